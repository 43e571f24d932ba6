import os

# Before torch starts, as `hpsearch` does (search/cli.py): trials trained inside the test process wait
# asleep, not spinning, so that the suite keeps its pace beside other work on the same cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

# Every test process (and every hpsearch it starts) uses a throwaway cache, never the user's.
os.environ.setdefault("HPSEARCH_CACHE", tempfile.mkdtemp(prefix="hpsearch-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_SPACE = Path(__file__).parent / "tiny_space.py"
CLASSES = {"circle": (200, 40, 40), "square": (40, 160, 40), "stripe": (40, 40, 200)}


def write_tiny_images(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """Three easy classes of small real image files, in class folders."""
    rng = np.random.default_rng(seed)
    for label, color in CLASSES.items():
        (root / label / "nested").mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            pixels = np.full((20, 24, 3), 235, np.uint8)
            if label == "circle":
                yy, xx = np.mgrid[:20, :24]
                pixels[(yy - 10) ** 2 + (xx - 12) ** 2 < 36] = color
            elif label == "square":
                pixels[5:15, 7:17] = color
            else:
                pixels[:, ::4] = color
            pixels = np.clip(pixels + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
            sub = root / label / ("nested" if n % 3 == 0 else "")
            ext = ".PNG" if n % 2 else ".jpg"
            Image.fromarray(pixels).save(sub / f"{label}{n}{ext}", "PNG" if ext == ".PNG" else "JPEG")
    return root


@pytest.fixture
def tiny_images(tmp_path) -> Path:
    return write_tiny_images(tmp_path / "images")


def _nan_cnn() -> nn.Module:
    """Features that turn to NaN, so the loss does too."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Identity())
    net[3].forward = lambda x: x * float("nan")
    net.num_features = 4
    return net


def _greedy_cnn() -> nn.Module:
    """Asks the real allocator for a petabyte: a real out-of-memory error."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Identity())
    net[3].forward = lambda x: x + torch.empty(2**50, dtype=torch.uint8).sum()
    net.num_features = 4
    return net


@pytest.fixture
def broken_models():
    """Registers nan_cnn and greedy_cnn for one test, then takes them out of the registry again."""
    from trainers.models.registry import MODELS

    for builder, name in ((_nan_cnn, "nan_cnn"), (_greedy_cnn, "greedy_cnn")):
        MODELS.register(builder, name)
    yield
    MODELS.remove("nan_cnn")
    MODELS.remove("greedy_cnn")
