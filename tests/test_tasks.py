"""The tasks beyond single labels: the resize geometry, Severstal's layout, masks and boxes that follow
their images, and one-vs-rest folds."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from trainers.augment import Augment
from trainers.cache import decode_once
from trainers.crossval import fit, fold_rows
from trainers.data import discover
from trainers.errors import InputError
from trainers.images import frame_of, resize_square
from trainers.loop import Hooks, TrainConfig
from trainers.prepare import prepare, to_device
from trainers.rle import rle_encode
from trainers.tasks import get_task
from trainers.tasks.localize import box_iou


@pytest.mark.parametrize("mode", ["letterbox", "stretch", "pad-reflect"])
@pytest.mark.parametrize("width, height", [(96, 64), (64, 96), (101, 37)])
def test_boxes_map_into_the_square_and_exactly_back_out(mode, width, height):
    frame = frame_of(width, height, 48, mode)
    box = (3.25, 7.5, width - 10.0, height - 1.75)
    assert frame.from_square(frame.to_square(box)) == pytest.approx(box, abs=1e-9)
    x0, y0, x1, y1 = frame.to_square((0, 0, width, height))
    assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48


@pytest.mark.parametrize("width, height", [(96, 64), (64, 96)])
def test_the_mapped_box_lies_on_the_object_in_the_letterboxed_pixels(width, height):
    image = Image.new("RGB", (width, height), (0, 0, 0))
    box = (20, 10, 50, 40)
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(255, 255, 255))
    square = resize_square(image, 48, "letterbox")[:, :, 0]
    x0, y0, x1, y1 = frame_of(width, height, 48, "letterbox").to_square(box)
    ys, xs = np.nonzero(square > 127)
    assert abs(xs.min() - x0) <= 1 and abs(xs.max() + 1 - x1) <= 1 and abs(ys.min() - y0) <= 1 and abs(ys.max() + 1 - y1) <= 1


def write_severstal(root, defects: dict[str, list[int]], size=(40, 16)):
    """Images with a bright square per defect class (class k at column 8k), masks in train.csv."""
    (root / "train_images").mkdir(parents=True)
    rows = []
    for name, classes in defects.items():
        pixels = np.full((size[1], size[0], 3), 60, np.uint8)
        for k in classes:
            mask = np.zeros((size[1], size[0]), np.uint8)
            mask[4:12, 8 * k : 8 * k + 6] = 1
            pixels[mask == 1] = 250
            rows.append((name, k, rle_encode(mask)))
        Image.fromarray(pixels).save(root / "train_images" / name)
    with open(root / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("ImageId", "ClassId", "EncodedPixels"), *rows])
    return root


def test_severstal_layout_gives_labels_masks_and_decoded_masks_on_their_pixels(tmp_path):
    root = write_severstal(tmp_path / "steel", {"a.png": [1, 3], "b.png": [], "c.png": [2]})
    found = discover(root)
    assert {i.relpath: (i.label, [c for c, _ in i.masks]) for i in found.items} == {
        "train_images/a.png": ("defect", ["1", "3"]), "train_images/b.png": ("clean", []), "train_images/c.png": ("defect", ["2"])}
    assert discover(root / "train.csv").fingerprint == found.fingerprint
    decoded = decode_once(found, 20, "stretch", root=tmp_path / "cache")
    assert decoded.mask_classes == ["1", "2", "3"] and decoded.masks.shape == (3, 20, 20, 3)
    assert decoded.sizes == [(40, 16)] * 3
    for image, masks in zip(decoded.images, decoded.masks):
        bright = image[:, :, 0] > 150
        assert np.array_equal(masks.any(axis=2), bright)  # resized the same way, pixel for pixel


def test_a_mask_that_reaches_outside_its_image_leaves_it_out_with_the_reason(tmp_path):
    root = write_severstal(tmp_path / "steel", {"a.png": [1], "b.png": []})
    (root / "train.csv").write_text("ImageId,ClassId,EncodedPixels\na.png,1,600 50\n")
    decoded = decode_once(discover(root), 20, "stretch", root=tmp_path / "cache")
    assert decoded.skipped == [("train_images/a.png", "bad mask of class 1 (runs reach outside the 40x16 image)")]


def test_a_manifest_box_that_is_not_a_box_is_refused_with_its_line(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,x_min,y_min,x_max,y_max\na.png,cat,10,5,4,20\n")
    with pytest.raises(InputError, match=r"line 2: box \(10, 5, 4, 20\) needs 0 <= x_min < x_max"):
        discover(tmp_path / "m.csv")


def test_masks_and_boxes_follow_their_images_through_flips_and_shifts():
    gen = torch.Generator().manual_seed(3)
    masks = torch.zeros(6, 1, 24, 24, dtype=torch.uint8)
    boxes = torch.tensor([[0, 0.25, 0.125, 0.5, 0.375]] * 6)
    masks[:, :, 3:9, 6:12] = 1  # the same square, as a mask and as a box
    images = masks.float().repeat(1, 3, 1, 1)
    moved, theta = Augment(flip_h=True, flip_v=True, translate=0.1)(images, gen)
    warped = get_task("segment").warp_targets(masks, theta)
    # nearest-pixel masks against bilinear images: under sub-pixel shifts only a corner pixel may differ
    assert ((warped[:, 0].bool() != (moved[:, 0] > 0.5)).sum(dim=(1, 2)) <= 2).all()
    assert (warped.sum(dim=(1, 2, 3)) == 36).all()
    for image, box in zip(moved, get_task("localize").warp_targets(boxes, theta)):
        ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
        seen = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / 24
        assert torch.allclose(box[1:], seen, atol=1.5 / 24)


def test_segment_and_localize_metrics_are_one_when_right():
    masks = torch.zeros(2, 2, 8, 8)
    masks[0, 1, 2:5, 2:5] = 1
    perfect = get_task("segment").metrics(masks * 20 - 10, masks)
    assert perfect["dice"] == pytest.approx(1) and perfect["dice_images"] == pytest.approx(1)
    assert get_task("segment").metrics(-10 * torch.ones_like(masks), masks)["dice"] == 0
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 0.5, 0.5]])
    assert box_iou(boxes, boxes).tolist() == pytest.approx([1, 1])
    assert box_iou(boxes[1:], torch.tensor([[0.25, 0.0, 0.75, 0.5]])).item() == pytest.approx(1 / 3)
    # one image: right class, box exact; the other: right class, box too far off (IoU 1/3): a hit rate of 1/2
    logits = torch.tensor([[5.0, -5.0], [5.0, -5.0]])
    outputs = torch.cat([logits, torch.logit(torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.25, 0.01, 0.75, 0.5]]))], 1)
    targets = torch.tensor([[0, 0.1, 0.2, 0.5, 0.6], [0, 0.0, 0.0, 0.5, 0.5]])
    metrics = get_task("localize").metrics(outputs, targets)
    assert metrics["accuracy"] == 1 and metrics["hit_rate"] == 0.5


def test_one_vs_rest_trains_every_class_and_fold_and_keeps_their_ensemble(tiny_images):
    data = to_device(prepare(str(tiny_images), 16, "stretch"), get_task("ovr"), torch.device("cpu"))
    task = get_task("ovr", negatives=0.5, folds=3)
    steps = []
    config = TrainConfig(model="baseline", batch_size=8, lr=3e-3, epochs=2)
    result = fit(config, data, task, "accuracy", Hooks(report=lambda step, metrics: steps.append(step), progress=False))
    assert sorted(steps) == list(range(9)) and steps != sorted(steps)  # 3 classes x 3 folds, in a shuffled order
    assert result.best["valid_accuracy"] == pytest.approx(np.mean([h["valid_accuracy"] for h in result.history]))
    assert result.valid_outputs.shape == (len(data.splits["valid"]), 3)
    for c in range(3):  # each class: its own images and about half of the others', none of the test split
        rows = torch.cat(fold_rows(data, c, task.negatives, task.folds, seed=0)[0])
        labels = data.targets[rows]
        assert (labels == c).sum() == (data.targets[torch.cat([data.splits["train"], data.splits["valid"]])] == c).sum()
        assert not set(rows.tolist()) & set(data.splits["test"].tolist())


def test_beating_chance_by_less_than_one_image_is_not_beating_it(tiny_images):
    from trainers.loop import chance_level

    task = get_task("classify")
    data = to_device(prepare(str(tiny_images), 16, "stretch"), task, torch.device("cpu"))
    chance, one_better = chance_level(task, data, "f1_weighted")
    assert one_better > chance
    # the commonest answer everywhere, but one image it gets wrong given another wrong answer: no image more is
    # right, yet weighted F1 moves above chance (as 0.019206 against 0.0192 for models that learned nothing)
    targets = data.targets[data.splits["valid"]]
    constant = task.constant(data.targets[data.splits["train"]], data.class_names)
    outputs = constant.expand(len(targets), -1).clone()
    i = next(i for i, t in enumerate(targets.tolist()) if t != int(constant.argmax()))
    other = next(c for c in range(3) if c not in (int(targets[i]), int(constant.argmax())))
    outputs[i] = task.right_answers(torch.tensor([other]), data.class_names)[0]
    assert chance < task.metrics(outputs, targets)["f1_weighted"] < one_better
