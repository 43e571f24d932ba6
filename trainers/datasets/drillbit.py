"""Built-in data for the drillbit space: drill bits photographed in a fixture, whose diameter and
length make the class (seed 000). Fixed camera scale, so size in the frame is the signal; varied
backgrounds, lighting, metal tone, a little rotation and shift, and clutter at the frame's sides
(outside the region of interest the space crops to).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIDE = 96
PER_CLASS = 150
DIAMETERS = {"thin": 6, "thick": 11}  # pixels at the fixture's scale
LENGTHS = {"short": 40, "long": 66}


def render_drillbit(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for thickness, diameter in DIAMETERS.items():
        for length_name, length in LENGTHS.items():
            folder = root / f"{thickness}-{length_name}"
            folder.mkdir(parents=True)
            for n in range(PER_CLASS):
                _photo(rng, diameter, length).save(folder / f"bit{n:03d}.png")


def _photo(rng: np.random.Generator, diameter: int, length: int) -> Image.Image:
    scale = 2  # drawn at twice the size, then reduced: smooth edges
    side = SIDE * scale
    canvas = Image.fromarray(_background(rng, side))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 4)):  # clutter at the sides, outside the region of interest
        x = rng.choice([rng.uniform(0, 0.12), rng.uniform(0.88, 1.0)]) * side
        y0, y1 = sorted(rng.uniform(0, side, 2))
        draw.line((x, y0, x + rng.uniform(-10, 10), y1), fill=tuple(int(c) for c in rng.integers(0, 255, 3)), width=int(rng.integers(2, 8)))
    bit = _bit(rng, (diameter + rng.uniform(-0.8, 0.8)) * scale, (length + rng.uniform(-3, 3)) * scale, side)
    bit = bit.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR, center=(side / 2, side / 2))
    offset = tuple(int(v) for v in rng.integers(-5 * scale, 5 * scale + 1, 2))
    canvas.paste(bit, offset, bit)
    photo = canvas.resize((SIDE, SIDE), Image.LANCZOS)
    if rng.random() < 0.3:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    pixels = np.asarray(photo).astype(np.float32) * _lighting(rng)
    pixels += rng.normal(0, rng.uniform(2, 8), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _background(rng: np.random.Generator, side: int) -> np.ndarray:
    base, other = rng.integers(20, 120, 3), rng.integers(20, 120, 3)  # a darker bench than the steel
    t = np.linspace(0, 1, side)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, side)[:, None, None]
    gradient = base * (1 - t) + other * t * rng.uniform(0, 0.5) + base * t * (1 - rng.uniform(0, 0.5))
    return np.clip(np.broadcast_to(gradient, (side, side, 3)) + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8)


def _bit(rng: np.random.Generator, diameter: float, length: float, side: int) -> Image.Image:
    """A vertical bit centred in a transparent layer: shank, fluted body, pointed tip."""
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    metal = int(rng.integers(160, 235))
    tone = (metal, metal, int(metal * rng.uniform(0.85, 1.0)), 255)
    dark = tuple(int(c * 0.55) for c in tone[:3]) + (255,)
    left, top = side / 2 - diameter / 2, side / 2 - length / 2
    shank_end = top + 0.38 * length
    tip_start = top + length - diameter * 0.9
    draw.rectangle((left, top, left + diameter, shank_end), fill=tone)
    draw.rectangle((left, shank_end, left + diameter, tip_start), fill=tone)
    pitch = max(diameter * 0.9, 4)
    y = shank_end
    while y < tip_start:  # the flutes: dark diagonal grooves
        draw.line((left, y + pitch * 0.6, left + diameter, y), fill=dark, width=max(2, int(diameter / 4)))
        y += pitch
    draw.polygon([(left, tip_start), (left + diameter, tip_start), (side / 2, top + length)], fill=tone)
    return layer


def _lighting(rng: np.random.Generator) -> np.ndarray:
    """Overall exposure, a light falling off across the frame, and a colour cast."""
    t = np.linspace(-1, 1, SIDE)
    falloff = 1 + rng.uniform(-0.25, 0.25) * (t[:, None] if rng.random() < 0.5 else t[None, :])
    cast = rng.uniform(0.9, 1.1, 3)
    return (rng.uniform(0.7, 1.25) * falloff)[:, :, None] * cast[None, None, :]
