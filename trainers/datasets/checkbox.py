"""A deterministic renderer of form-field crops: checked, unchecked and other (not a checkbox).

Like real scans, the classes are imbalanced and the crops vary: square crops of the box alone
and wide crops with label text, box styles and colours, tick / cross / fill marks of any weight,
radio buttons, toggles, sliders and plain text as 'other', then rotation, blur, noise and JPEG.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CLASSES = {"unchecked": 0.45, "checked": 0.38, "other": 0.17}  # share of the images
WORDS = "name yes no agree email newsletter terms accept remember me subscribe option other married paid urgent".split()


def render_checkbox(folder: Path, count: int = 1500, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.choice(list(CLASSES), size=count, p=list(CLASSES.values()))
    for label in CLASSES:
        (folder / label).mkdir(parents=True, exist_ok=True)
    for n, label in enumerate(labels):
        img = _crop(rng, label)
        if rng.random() < 0.5:
            buffer = io.BytesIO()
            img.save(buffer, "JPEG", quality=int(rng.integers(25, 90)))
            (folder / label / f"{n:05d}.jpg").write_bytes(buffer.getvalue())
        else:
            img.save(folder / label / f"{n:05d}.png")


def _crop(rng: np.random.Generator, label: str) -> Image.Image:
    height = int(rng.integers(22, 56))
    wide = rng.random() < 0.6
    width = int(height * rng.uniform(1.8, 4)) if wide else int(height * rng.uniform(0.9, 1.2))
    paper = tuple(int(v) for v in rng.integers(200, 256, 3))
    img = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(img)
    ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    side = int(height * rng.uniform(0.55, 0.85))
    box_left = int(rng.integers(1, max(2, height - side))) if rng.random() < 0.8 or not wide else width - side - 3
    box = (box_left, (height - side) // 2 + int(rng.integers(-2, 3)))
    box = (box[0], box[1], box[0] + side, box[1] + side)
    if wide:
        _label_text(rng, draw, img.size, box, ink)
        extent = side if label != "other" else 3 * side  # toggles and sliders are wider than a box
        draw.rectangle((box[0] - 3, 0, box[0] + extent + 3, height), fill=paper)  # no text under the control
    if label == "other":
        _other(rng, draw, box, ink, paper)
    else:
        _box(rng, draw, box, ink)
        if label == "checked":
            _mark(rng, draw, box)
    return _degrade(rng, img)


def _label_text(rng, draw, size, box, ink) -> None:
    width, height = size
    font = ImageFont.load_default(size=int(height * rng.uniform(0.35, 0.6)))
    text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
    x = box[2] + int(rng.integers(3, 10)) if box[0] < width // 2 else 3
    draw.text((x, height // 2), text, fill=ink, font=font, anchor="lm")


def _box(rng, draw, box, ink) -> None:
    line = int(rng.integers(1, 4))
    if rng.random() < 0.3:
        draw.rectangle(box, fill=tuple(int(v) for v in rng.integers(225, 256, 3)))
    if rng.random() < 0.3:
        draw.rounded_rectangle(box, radius=max(1, (box[2] - box[0]) // 5), outline=ink, width=line)
    else:
        draw.rectangle(box, outline=ink, width=line)
    if rng.random() < 0.15:  # a double border
        draw.rectangle((box[0] + line + 1, box[1] + line + 1, box[2] - line - 1, box[3] - line - 1), outline=ink)


def _mark(rng, draw, box) -> None:
    x0, y0, x1, y1 = box
    side = x1 - x0
    color = tuple(int(v) for v in rng.integers(0, 120, 3))
    weight = max(2, int(side * rng.uniform(0.1, 0.22)))  # thinner marks vanish at 32 px: noise, not difficulty
    inset = side * rng.uniform(0.12, 0.3)
    kind = rng.choice(["tick", "cross", "fill"], p=[0.5, 0.3, 0.2])
    if kind == "tick":
        points = [(x0 + inset, y0 + side * 0.55), (x0 + side * 0.42, y1 - inset), (x1 - inset * 0.5, y0 + inset * 0.6)]
        draw.line(points, fill=color, width=weight, joint="curve")
    elif kind == "cross":
        draw.line((x0 + inset, y0 + inset, x1 - inset, y1 - inset), fill=color, width=weight)
        draw.line((x0 + inset, y1 - inset, x1 - inset, y0 + inset), fill=color, width=weight)
    else:
        draw.rectangle((x0 + inset, y0 + inset, x1 - inset, y1 - inset), fill=color)


def _other(rng, draw, box, ink, paper) -> None:
    x0, y0, x1, y1 = box
    side = x1 - x0
    kind = rng.choice(["radio", "toggle", "slider", "text"])
    if kind == "radio":
        draw.ellipse(box, outline=ink, width=int(rng.integers(1, 3)))
        if rng.random() < 0.5:
            r = side * 0.25
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ink)
    elif kind == "toggle":
        draw.rounded_rectangle((x0, y0 + side // 4, x0 + 2 * side, y1 - side // 4), radius=side // 4, outline=ink, width=2)
        knob = x0 + (side if rng.random() < 0.5 else 0)
        draw.ellipse((knob + 2, y0 + side // 4 + 2, knob + side - 2, y1 - side // 4 - 2), fill=ink)
    elif kind == "slider":
        cy = (y0 + y1) // 2
        draw.line((x0, cy, x0 + 3 * side, cy), fill=ink, width=2)
        knob = x0 + int(rng.uniform(0, 2.5) * side)
        draw.rectangle((knob, y0 + side // 5, knob + side // 3, y1 - side // 5), fill=ink)
    # 'text': a crop of label text with no control at all


def _degrade(rng, img: Image.Image) -> Image.Image:
    if rng.random() < 0.7:
        img = img.rotate(float(rng.uniform(-4, 4)), resample=Image.BILINEAR, fillcolor=img.getpixel((0, 0)))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    pixels = np.asarray(img, dtype=np.float32)
    pixels += rng.normal(0, rng.uniform(0, 14), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
