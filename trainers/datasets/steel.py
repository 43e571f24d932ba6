"""Built-in data for the steel spaces (seed 002), in Severstal's layout: train_images/*.jpg and a
train.csv of ImageId,ClassId,EncodedPixels. Rolled-steel textures, half of them clean, the rest with
one or two of four synthetic defect kinds, each with its mask:

1 pits: a cluster of small dark dents    2 cracks: a dark crack running across the strip
3 scratches: long bright horizontal lines    4 patches: a large dark blotch
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from trainers.rle import rle_encode

WIDTH, HEIGHT = 192, 64  # a strip, wider than tall like Severstal's 1600 x 256
IMAGES = 600


def render_steel(root: Path, seed: int = 0, images: int = IMAGES) -> None:
    rng = np.random.default_rng(seed)
    (root / "train_images").mkdir(parents=True)
    rows = []
    for n in range(images):
        kinds = [] if n % 2 == 0 else sorted(rng.choice(4, size=1 + (rng.random() < 0.3), replace=False) + 1)
        pixels = _texture(rng)
        name = f"{n:04d}.jpg"
        for kind in kinds:
            mask = DEFECTS[kind](rng, pixels)
            rows.append((name, int(kind), rle_encode(mask)))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / "train_images" / name, quality=92)
    with open(root / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "ClassId", "EncodedPixels"])
        writer.writerows(rows)


def _texture(rng: np.random.Generator) -> np.ndarray:
    """Grey steel with rolling streaks along the strip, a light gradient and fine grain; float RGB."""
    base = rng.uniform(90, 160)
    streaks = np.convolve(rng.normal(0, 6, HEIGHT), np.ones(3) / 3, mode="same")[:, None]
    gradient = np.linspace(-1, 1, WIDTH)[None, :] * rng.uniform(-12, 12)
    grey = base + streaks + gradient + rng.normal(0, 4, (HEIGHT, WIDTH))
    return np.repeat(grey[:, :, None], 3, axis=2) * rng.uniform(0.97, 1.03, 3)


def _paint(pixels: np.ndarray, mask: np.ndarray, shift: float, blur: float = 1.0) -> np.ndarray:
    """Darken (shift < 0) or brighten the masked area with a soft edge; returns the mask."""
    soft = np.asarray(Image.fromarray(mask * 255).filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255
    pixels += shift * soft[:, :, None]
    return mask


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    layer = Image.new("L", (WIDTH, HEIGHT), 0)
    return layer, ImageDraw.Draw(layer)


def _pits(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    cx, cy, rx, ry = rng.uniform(20, WIDTH - 20), rng.uniform(14, HEIGHT - 14), rng.uniform(12, 22), rng.uniform(8, 14)
    spots, draw = _canvas()
    for _ in range(rng.integers(10, 20)):
        a, r = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1))
        x, y, s = cx + r * rx * np.cos(a), cy + r * ry * np.sin(a), rng.uniform(1.5, 3)
        draw.ellipse((x - s, y - s, x + s, y + s), fill=1)
    _paint(pixels, np.asarray(spots), -rng.uniform(45, 70), blur=0.6)
    region, draw = _canvas()
    draw.ellipse((cx - rx - 2, cy - ry - 2, cx + rx + 2, cy + ry + 2), fill=1)
    return np.asarray(region)


def _crack(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    x, points = rng.uniform(20, WIDTH - 20), []
    for y in np.linspace(0, HEIGHT, 7):
        x += rng.uniform(-6, 6)
        points.append((x, y))
    line, draw = _canvas()
    draw.line(points, fill=1, width=int(rng.integers(3, 5)))
    _paint(pixels, np.asarray(line), -rng.uniform(50, 80), blur=0.7)
    region, draw = _canvas()
    draw.line(points, fill=1, width=9)
    return np.asarray(region)


def _scratches(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    y, x0 = rng.uniform(8, HEIGHT - 12), rng.uniform(0, WIDTH * 0.4)
    x1 = min(WIDTH, x0 + rng.uniform(60, 130))
    lines, draw = _canvas()
    for k in range(rng.integers(1, 4)):
        dy = y + 3 * k
        draw.line((x0 + rng.uniform(0, 10), dy, x1 - rng.uniform(0, 10), dy + rng.uniform(-2, 2)), fill=1, width=2)
    _paint(pixels, np.asarray(lines), rng.uniform(45, 70), blur=0.5)
    region, draw = _canvas()
    draw.rectangle((x0, y - 3, x1, y + 3 * k + 4), fill=1)
    return np.asarray(region)


def _patch(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    cx, cy = rng.uniform(30, WIDTH - 30), rng.uniform(16, HEIGHT - 16)
    rx, ry = rng.uniform(18, 34), rng.uniform(10, 20)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    wobble = rng.uniform(0.75, 1.15, len(angles))
    outline = [(cx + rx * w * np.cos(a), cy + ry * w * np.sin(a)) for a, w in zip(angles, wobble)]
    region, draw = _canvas()
    draw.polygon(outline, fill=1)
    mask = np.asarray(region)
    _paint(pixels, mask, -rng.uniform(35, 55), blur=2.0)
    return mask


DEFECTS = {1: _pits, 2: _crack, 3: _scratches, 4: _patch}
