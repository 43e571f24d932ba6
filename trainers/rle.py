"""Run-length encoded masks as Severstal writes them: 'start length' pairs, 1-based, counting pixels
top to bottom, then left to right (column-major)."""

from __future__ import annotations

import numpy as np


def rle_encode(mask: np.ndarray) -> str:
    """A (height, width) mask of 0/1 (or bool) -> 'start length start length ...'; '' when empty."""
    pixels = np.concatenate([[0], np.asarray(mask, dtype=bool).T.ravel().astype(np.int8), [0]])
    edges = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1  # 1-based: where runs start and end
    edges[1::2] -= edges[::2]
    return " ".join(map(str, edges))


def rle_decode(text: str, height: int, width: int) -> np.ndarray:
    """'start length ...' -> a (height, width) uint8 mask of 0/1. Raises ValueError for text that is not
    pairs of positive numbers inside the image."""
    try:
        numbers = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f"run-length text must be numbers: {text[:40]!r}") from None
    if len(numbers) % 2:
        raise ValueError(f"run-length text needs 'start length' pairs, it has {len(numbers)} numbers")
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    if len(numbers) and (starts.min() < 0 or lengths.min() < 1 or (starts + lengths).max() > height * width):
        raise ValueError(f"runs reach outside the {width}x{height} image")
    flat = np.zeros(height * width + 1, np.int8)
    np.add.at(flat, starts, 1)  # +1 where each run starts, -1 after it ends: a running sum fills the runs
    np.add.at(flat, starts + lengths, -1)
    return (np.cumsum(flat[:-1]) > 0).astype(np.uint8).reshape(width, height).T
