"""scikit-learn's handwritten digits (real scans, 8x8, 16 grey levels) written out as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_digits(folder: Path) -> None:
    digits = load_digits()
    for n, (image, target) in enumerate(zip(digits.images, digits.target)):
        (folder / str(target)).mkdir(parents=True, exist_ok=True)
        pixels = (255 - image * (255 / 16)).round().astype(np.uint8)  # dark ink on white paper
        Image.fromarray(pixels, mode="L").save(folder / str(target) / f"{n:04d}.png")
