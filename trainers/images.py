"""Decode one image file into a square RGB uint8 array: the only place pixels are read."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
RESIZE_MODES = ("pad-reflect", "letterbox", "stretch")
LETTERBOX_FILL = 114  # the grey that detection models are usually padded with


class BadImage(Exception):
    """A file that cannot be used as an image; the message is the reason shown to the user."""


def load_rgb(path) -> Image.Image:
    """Open any still image as 8-bit RGB with its EXIF orientation applied."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)  # also forces the full decode
            return _to_rgb(img)
    except Image.DecompressionBombError as err:
        raise BadImage(f"decompression bomb ({err})") from None
    except UnidentifiedImageError:
        raise BadImage("not an image") from None
    except OSError as err:
        reason = "truncated" if "truncated" in str(err) else "corrupt"
        raise BadImage(f"{reason} ({err})") from None
    except (ValueError, SyntaxError, EOFError, IndexError) as err:
        raise BadImage(f"corrupt ({err})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit and float images: PIL's own convert clips them to 255, so scale by hand.
        pixels = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and pixels.max() <= 1.0 else 65535.0
        img = Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


def resize_square(img: Image.Image, size: int, mode: str) -> np.ndarray:
    """Make a size x size x 3 uint8 array, keeping the aspect ratio unless mode is 'stretch'."""
    if mode == "stretch":
        return np.asarray(img.resize((size, size), Image.BILINEAR))
    if mode == "pad-reflect":
        pixels = np.asarray(img)
        h, w = pixels.shape[:2]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        pad = ((top, side - h - top), (left, side - w - left), (0, 0))
        square = Image.fromarray(np.pad(pixels, pad, mode="reflect" if min(h, w) > 1 else "edge"))
        return np.asarray(square.resize((size, size), Image.BILINEAR))
    if mode == "letterbox":
        scale = size / max(img.size)
        w, h = (max(1, round(d * scale)) for d in img.size)
        canvas = Image.new("RGB", (size, size), (LETTERBOX_FILL,) * 3)
        canvas.paste(img.resize((w, h), Image.BILINEAR), ((size - w) // 2, (size - h) // 2))
        return np.asarray(canvas)
    raise ValueError(f"unknown resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")


def decode(path, size: int, mode: str, crop: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """`crop`: a region of interest (left, top, right, bottom) as fractions of the image, cut before resizing."""
    img = load_rgb(path)
    if crop:
        w, h = img.size
        left, top, right, bottom = crop
        img = img.crop((round(left * w), round(top * h), max(round(right * w), round(left * w) + 1), max(round(bottom * h), round(top * h) + 1)))
    return resize_square(img, size, mode)
