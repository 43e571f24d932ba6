"""Decode one image file into a square RGB uint8 array: the only place pixels are read."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from trainers.errors import InputError

EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
RESIZE_MODES = ("pad-reflect", "letterbox", "stretch")
LETTERBOX_FILL = 114  # the grey that detection models are usually padded with
PER_IMAGE_BOX = "manifest"  # a space's crop that cuts each image to its own box from the manifest


class BadImage(Exception):
    """A file that cannot be used as an image; the message is the reason shown to the user."""


class TooLarge(BadImage):
    """An image with more pixels than allowed: refused before its pixels are decoded."""


def pixels_of(data: bytes) -> int:
    """An image's pixels, from its header alone; 0 where the header cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.width * img.height
    except Exception:  # any unreadable header: the decode that follows says why
        return 0


def load_rgb(path, max_pixels: int | None = None) -> Image.Image:
    """Open any still image (a path or a binary file) as 8-bit RGB with its EXIF orientation applied.
    More than `max_pixels` pixels (PIL's bomb limit, 89 million, when None) is refused from the header alone."""
    try:
        with Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise TooLarge(f"too large ({img.width} x {img.height} pixels, over {max_pixels:,})")
            img = ImageOps.exif_transpose(img)  # also forces the full decode
            return _to_rgb(img)
    except Image.DecompressionBombError as err:
        raise TooLarge(f"decompression bomb ({err})") from None
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


@dataclass(frozen=True)
class Frame:
    """Where an image (after its crop) lies in the square it is resized into: square = image * scale + offset,
    in pixels, per axis. The one description of the resize geometry, for pixels, boxes and masks alike."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_square(self, box):
        """(x_min, y_min, x_max, y_max) in the image's pixels -> in the square's pixels."""
        x0, y0, x1, y1 = box
        return (x0 * self.scale_x + self.offset_x, y0 * self.scale_y + self.offset_y,
                x1 * self.scale_x + self.offset_x, y1 * self.scale_y + self.offset_y)

    def from_square(self, box):
        x0, y0, x1, y1 = box
        return ((x0 - self.offset_x) / self.scale_x, (y0 - self.offset_y) / self.scale_y,
                (x1 - self.offset_x) / self.scale_x, (y1 - self.offset_y) / self.scale_y)


def frame_of(width: int, height: int, size: int, mode: str) -> Frame:
    """The frame of a width x height image resized to size x size by `mode`."""
    if mode == "stretch":
        return Frame(size / width, size / height, 0.0, 0.0)
    if mode == "pad-reflect":  # padded to a square side, centred, then the square resized
        side = max(width, height)
        scale = size / side
        return Frame(scale, scale, (side - width) // 2 * scale, (side - height) // 2 * scale)
    if mode == "letterbox":  # resized by the longest side, then centred on a grey square
        scale = size / max(width, height)
        w, h = (max(1, round(d * scale)) for d in (width, height))
        return Frame(w / width, h / height, float((size - w) // 2), float((size - h) // 2))
    raise InputError(f"unknown resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")


def resize_square(img: Image.Image, size: int, mode: str, resample=Image.BILINEAR, fill: int = LETTERBOX_FILL) -> np.ndarray:
    """Make a size x size array, keeping the aspect ratio unless mode is 'stretch'. Masks pass
    resample=NEAREST and fill=0."""
    frame = frame_of(*img.size, size, mode)
    if mode == "stretch":
        return np.asarray(img.resize((size, size), resample))
    if mode == "pad-reflect":
        pixels = np.asarray(img)
        h, w = pixels.shape[:2]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        pad = ((top, side - h - top), (left, side - w - left)) + ((0, 0),) * (pixels.ndim - 2)
        square = Image.fromarray(np.pad(pixels, pad, mode="reflect" if min(h, w) > 1 else "edge"))
        return np.asarray(square.resize((size, size), resample))
    w, h = round(img.size[0] * frame.scale_x), round(img.size[1] * frame.scale_y)  # letterbox
    canvas = Image.new(img.mode, (size, size), (fill,) * len(img.getbands()) if len(img.getbands()) > 1 else fill)
    canvas.paste(img.resize((w, h), resample), (int(frame.offset_x), int(frame.offset_y)))
    return np.asarray(canvas)


def preparation(size: int, mode: str, crop) -> dict:
    """How an image becomes a model's input, in words a program without hpsearch can follow (an exported model's
    model.json carries it; deploy/without_hpsearch.py follows it with numpy, PIL and onnxruntime alone)."""
    how = {
        "stretch": "resized to size x size, the aspect ratio not kept",
        "pad-reflect": "padded to a square of side max(width, height), the image centred (top = (side - height) // 2, "
                       "left = (side - width) // 2), the padding mirrored without repeating the edge pixel (numpy.pad "
                       "mode 'reflect'; mode 'edge' where a side is 1 pixel), then that square resized to size x size",
        "letterbox": f"resized to round(width * s) x round(height * s) (at least 1) with s = size / max(width, height), "
                     f"then pasted on a size x size square of grey {LETTERBOX_FILL} at ((size - w) // 2, (size - h) // 2)",
    }[mode]
    return {
        "decode": ["the EXIF orientation applied (PIL's ImageOps.exif_transpose)",
                   "16-bit and float images (PIL modes I, I;16, I;16B, I;16L, I;16N, F): value * 255 / 65535 (mode F "
                   "whose largest value is at most 1: value * 255), clipped to 0..255, truncated to uint8, as mode L",
                   "images with transparency (modes RGBA, LA, PA, or a transparency key): composited over white",
                   "then PIL's convert('RGB'): grey, palette, CMYK and the rest"],
        "crop": None if not crop else "each image cut to its own box, in pixels, given with it" if crop == PER_IMAGE_BOX else {
            "fractions": crop, "how": "left, top, right, bottom as fractions of the width and height, each times the side "
                                      "and rounded (Python's round, half to even) to whole pixels; right and bottom at "
                                      "least left + 1 and top + 1"},
        "resize": {"mode": mode, "size": size, "how": how,
                   "filter": "PIL's Image.BILINEAR (Image.resize), which antialiases when it shrinks: its support grows "
                             "with the reduction; not OpenCV's INTER_LINEAR, which does not"},
        "layout": "RGB, uint8 0..255, arranged (N, 3, size, size): NCHW",
    }


def crop_box(width: int, height: int, crop: tuple[float, float, float, float] | None,
             box: tuple[float, float, float, float] | None = None) -> tuple[int, int, int, int]:
    """A region of interest in whole pixels: the image's own `box` (pixels) where given, else `crop`
    (left, top, right, bottom fractions), else the whole image."""
    if box:
        x0, y0 = (min(max(0, round(v)), limit - 1) for v, limit in zip(box[:2], (width, height)))
        return x0, y0, max(min(round(box[2]), width), x0 + 1), max(min(round(box[3]), height), y0 + 1)
    if not crop:
        return 0, 0, width, height
    left, top, right, bottom = crop
    x0, y0 = round(left * width), round(top * height)
    return x0, y0, max(round(right * width), x0 + 1), max(round(bottom * height), y0 + 1)


def decode(path, size: int, mode: str, crop: tuple[float, float, float, float] | None = None,
           box: tuple[float, float, float, float] | None = None, max_pixels: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The square RGB array and the image's original (width, height). A region of interest is cut before
    resizing: `box` in pixels, or `crop` as fractions (left, top, right, bottom) of the image."""
    img = load_rgb(path, max_pixels)
    original = img.size
    if crop or box:
        img = img.crop(crop_box(*original, crop, box))
    return resize_square(img, size, mode), original


def mask_to_original(mask: np.ndarray, width: int, height: int, mode: str, crop=None, resample=Image.NEAREST) -> np.ndarray:
    """A size x size map predicted on a resized image (a 0/1 mask, or with resample=BILINEAR probabilities),
    back on the original width x height pixels: the part of the square the image covers, resized to the
    region of interest, placed where it was cut; zero elsewhere."""
    x0, y0, x1, y1 = crop_box(width, height, crop)
    frame = frame_of(x1 - x0, y1 - y0, mask.shape[0], mode)
    left, top, right, bottom = (round(v) for v in frame.to_square((0, 0, x1 - x0, y1 - y0)))
    part = mask[top:bottom, left:right]
    part = part.astype(np.float32) if resample != Image.NEAREST else part.astype(np.uint8)
    region = np.asarray(Image.fromarray(part).resize((x1 - x0, y1 - y0), resample))
    full = np.zeros((height, width), region.dtype)
    full[y0:y1, x0:x1] = region
    return full


def box_to_original(box, width: int, height: int, size: int, mode: str, crop=None) -> tuple[float, float, float, float]:
    """A box in the size x size square (pixels) -> in the original width x height image's pixels."""
    x0, y0, x1, y1 = crop_box(width, height, crop)
    bx0, by0, bx1, by1 = frame_of(x1 - x0, y1 - y0, size, mode).from_square(box)
    return bx0 + x0, by0 + y0, bx1 + x0, by1 + y0
