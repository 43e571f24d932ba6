import subprocess
import sys
from pathlib import Path

import pytest

HPSEARCH = Path(sys.executable).parent / "hpsearch"


@pytest.mark.parametrize(
    "command, flags",
    [
        ("run", ["--space", "--trials", "--data", "--epochs", "--storage", "--study", "--device", "--weights"]),
        ("spaces", []),
        ("best", ["--storage", "--study", "--artifacts"]),
        ("status", ["--storage", "--study", "--trials"]),
        ("export", ["--storage", "--study", "--csv"]),
        ("report", ["--storage", "--study", "--out", "--artifacts"]),
        ("dashboard", ["--storage", "--host", "--port", "--artifacts"]),
        ("cascade", ["--out", "--storage", "--studies", "--artifacts", "--device"]),
    ],
)
def test_help_explains_each_flag(command, flags):
    out = subprocess.run([HPSEARCH, command, "-h"], capture_output=True, text=True, check=True).stdout
    for flag in flags:
        line = next(line for line in out.splitlines() if line.strip().startswith(flag))
        assert len(line.split(maxsplit=2)) >= 2, f"{flag} has no explanation"


def test_spaces_lists_each_space_with_its_task_and_search():
    out = subprocess.run([HPSEARCH, "spaces"], capture_output=True, text=True, check=True).stdout
    assert "checkbox" in out and "classify" in out
    assert "batch_size: 8 | 32 | 64" in out and "lr: 1e-05 .. 0.01 (log)" in out
    assert "--data: a folder of class folders, or a CSV manifest" in out and "region (0.12, 0.0, 0.88, 1.0)" in out
