import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_pictures import expected_size, pictures_of

from search.study.config import RunConfig
from search.study.run import run
from spaces import get_space
from trainers.images import mask_to_original, resize_square
from trainers.rle import rle_decode, rle_encode

HPSEARCH = Path(sys.executable).parent / "hpsearch"


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "pad-reflect"])
@pytest.mark.parametrize("crop", [None, (0.25, 0.0, 1.0, 1.0)])
def test_a_mask_on_the_square_goes_back_onto_the_original_pixels(mode, crop):
    original = np.zeros((64, 192), np.uint8)
    original[20:44, 100:160] = 1
    x0 = 48 if crop else 0
    square = resize_square(Image.fromarray(original[:, x0:]), 64, mode, resample=Image.NEAREST, fill=0)
    back = mask_to_original(square, 192, 64, mode, crop)
    assert back.shape == (64, 192)
    overlap = (back & original).sum() / (back | original).sum()
    assert overlap > 0.85, overlap


def test_cascade_writes_full_size_masks_from_the_best_trial_of_each_steel_study(tmp_path):
    import subprocess

    from trainers.datasets.steel import render_steel

    render_steel(tmp_path / "steel", images=60)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for name in ("steel-defect", "steel-types", "steel-masks"):
        run(RunConfig(space=name, storage=storage, study=name, trials=1, epochs=1, data=str(tmp_path / "steel"), quiet=True))
    for study, name, panels in (("steel-types", "labels_test.png", 1), ("steel-masks", "masks_test.png", 2)):
        (picture,) = pictures_of(storage, study, name)  # the best trial's: true and predicted, drawn on the images
        assert picture.format == "PNG" and picture.size == expected_size(get_space(study).image_size, panels)
    images = sorted((tmp_path / "steel" / "train_images").iterdir())[:40]
    out = tmp_path / "predictions.csv"
    truth = tmp_path / "steel" / "train.csv"
    done = subprocess.run([HPSEARCH, "cascade", *images, "--storage", storage, "--out", out, "--truth", truth],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: ") and "of 40 images with defects" in done.stdout
    scores = done.stdout.splitlines()[-1]
    assert scores.startswith(f"against {truth}: dice ") and 0 <= float(scores.split()[-1]) <= 1
    rows = list(csv.DictReader(open(out)))
    names = {p.name for p in images}
    for row in rows:  # Severstal's layout, every mask on the image's own 192 x 64 pixels
        assert row["ImageId"] in names and row["ClassId"] in {"1", "2", "3", "4"}
        assert rle_decode(row["EncodedPixels"], 64, 192).any()
    refused = subprocess.run([HPSEARCH, "cascade", images[0], "--storage", storage, "--studies", "steel-masks,steel-types,steel-defect"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "do not make a cascade" in refused.stderr


def test_the_truth_scores_itself_perfectly_and_nothing_as_it_should(tmp_path):
    from search.winner.cascade import dice_scores

    root = tmp_path / "steel"
    (root / "train_images").mkdir(parents=True)
    masks = {"a.png": np.zeros((8, 10), np.uint8), "b.png": np.zeros((8, 10), np.uint8)}
    masks["a.png"][2:5, 3:7] = 1
    for name in masks:
        Image.new("RGB", (10, 8)).save(root / "train_images" / name)
    (root / "train.csv").write_text(f"ImageId,ClassId,EncodedPixels\na.png,2,{rle_encode(masks['a.png'])}\n")
    paths = sorted((root / "train_images").iterdir())
    assert dice_scores([("a.png", "2", masks["a.png"])], paths, ["1", "2"], root / "train.csv") == {"dice": 1.0, "dice_images": 1.0}
    nothing = dice_scores([], paths, ["1", "2"], root / "train.csv")
    assert nothing == {"dice": 0.0, "dice_images": 0.75}  # 3 of the 4 (image, class) pairs are rightly empty
