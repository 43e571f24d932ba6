"""Built-in data for the localize space (seed 003): one object per picture (a disc, a triangle or a
cross) on a cluttered background, in landscape and portrait sizes, with its exact bounding box in
manifest.csv (path,label,x_min,y_min,x_max,y_max, pixels)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PER_CLASS = 150
SIZES = ((96, 64), (64, 96))  # landscape and portrait, width x height


def render_localize(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    rows = []
    for label, shape in SHAPES.items():
        for n in range(PER_CLASS):
            width, height = SIZES[n % 2]
            image = _clutter(rng, width, height)
            side = rng.uniform(18, 40)
            x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
            box = shape(ImageDraw.Draw(image), rng, x0, y0, side)
            path = f"images/{label}{n:03d}.png"
            image.save(root / path)
            rows.append((path, label, *(round(v, 2) for v in box)))
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "x_min", "y_min", "x_max", "y_max"])
        writer.writerows(rows)


def _clutter(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A muted background with thin lines and small grey blobs: nothing the size or colour of an object."""
    base = rng.integers(60, 200, 3)
    pixels = base + rng.normal(0, 10, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(4, 10)):
        grey = tuple(int(v) for v in np.clip(base + rng.integers(-60, 60), 0, 255))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.5:
            draw.line((x, y, x + rng.uniform(-40, 40), y + rng.uniform(-40, 40)), fill=grey, width=1)
        else:
            r = rng.uniform(1, 4)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=grey)
    return image


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    bright = [int(rng.integers(0, 60)), int(rng.integers(0, 60)), int(rng.integers(0, 60))]
    bright[rng.integers(0, 3)] = int(rng.integers(200, 256))
    return tuple(bright)


def _disc(draw, rng, x0, y0, side):
    draw.ellipse((x0, y0, x0 + side, y0 + side), fill=_colour(rng))
    return x0, y0, x0 + side, y0 + side


def _triangle(draw, rng, x0, y0, side):
    draw.polygon([(x0, y0 + side), (x0 + side, y0 + side), (x0 + side / 2, y0)], fill=_colour(rng))
    return x0, y0, x0 + side, y0 + side


def _cross(draw, rng, x0, y0, side):
    arm, colour = side / 3, _colour(rng)
    draw.rectangle((x0 + arm, y0, x0 + 2 * arm, y0 + side), fill=colour)
    draw.rectangle((x0, y0 + arm, x0 + side, y0 + 2 * arm), fill=colour)
    return x0, y0, x0 + side, y0 + side


SHAPES = {"disc": _disc, "triangle": _triangle, "cross": _cross}
