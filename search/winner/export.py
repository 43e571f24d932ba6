"""`hpsearch export --format onnx|torchscript|exported`: one trial's model as a file that other programs run
without hpsearch, and its card (model.json, which names each format's file exported into the folder). The
file takes uint8 RGB images as they come out of the decoding (N, 3, size, size) and normalises them itself.
Every export is checked as it is written: loaded again (onnxruntime, torch.jit.load, torch.export.load),
run on some of the study's test images, and refused where its outputs differ from PyTorch's by more than
1e-3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from search.errors import Stop
from search.objectives import metric_of
from search.winner.evaluate import study_data
from search.winner.models import best_models
from search.winner.options import ExportOptions
from trainers.errors import InputError
from trainers.images import preparation

TOLERANCE = 1e-3
CHECK_IMAGES = 8  # of the test split


class Exported(nn.Module):
    """The model with its normalisation: uint8 images in, the model's outputs out."""

    def __init__(self, predictor):
        super().__init__()
        self.model = predictor.model
        mean, std = predictor.mean_std
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images.float() / 255 - self.mean) / self.std)


def _onnx(module: nn.Module, example: torch.Tensor, path: Path):
    torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["images"], output_names=["outputs"],
                      dynamic_axes={"images": {0: "batch"}, "outputs": {0: "batch"}}, opset_version=17)

    def run(images: torch.Tensor) -> np.ndarray:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"images": images.numpy()})[0]

    return run


def _torchscript(module: nn.Module, example: torch.Tensor, path: Path):
    torch.jit.trace(module, example).save(str(path))
    def run(images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.jit.load(str(path))(images).numpy()

    return run


def _exported(module: nn.Module, example: torch.Tensor, path: Path):
    """torch.export's program (torch.jit, TorchScript's engine, is deprecated in this torch)."""
    batch = torch.export.Dim("batch", min=1)
    torch.export.save(torch.export.export(module, (example,), dynamic_shapes={"images": {0: batch}}), str(path))

    def run(images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.export.load(str(path)).module()(images).numpy()

    return run


# file name, writer (returns its runner)
FORMATS = {"onnx": ("model.onnx", _onnx), "torchscript": ("model.pt", _torchscript), "exported": ("model.pt2", _exported)}


def export(options: ExportOptions) -> str:
    """`hpsearch export --format F --out DIR`: the chosen trial's model as a file of that format, checked."""
    device, fmt, out = torch.device("cpu"), options.format, Path(options.out)
    study, trials, ensemble = best_models(options.choice, device)
    predictor, chosen = ensemble.predictors[0], trials[0]
    earlier = earlier_export(out, study.study_name, chosen.number)
    images = study_data(study, ensemble, device, options.data)
    images = images.pixels(images.splits["test"][:CHECK_IMAGES]).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    name, write = FORMATS[fmt]
    module = Exported(predictor).eval()
    with torch.no_grad():
        expected = module(images).numpy()
        run = write(module, images, out / name)
    difference = float(np.abs(run(images) - expected).max())
    if not difference <= TOLERANCE:
        (out / name).unlink(missing_ok=True)
        raise Stop(f"the {fmt} export of trial {chosen.number} differs from PyTorch by {difference:.2g} (over "
                   f"{TOLERANCE:g}) on {len(images)} test images: not written")
    card = predictor.card
    model = {
        "study": study.study_name, "trial": chosen.number, "params": chosen.params,
        "value": metric_of(chosen), "task": card["task"], "task_options": card["task_options"], "classes": card["class_names"],
        "image_size": card["image_size"], "resize": card["resize"], "crop": card["crop"],
        "input": {"name": "images", "shape": ["N", 3, card["image_size"], card["image_size"]], "layout": "NCHW",
                  "dtype": "uint8", "channels": "RGB", "range": [0, 255]},
        "preparation": preparation(card["image_size"], card["resize"], card["crop"]),
        "normalisation": {"mean": predictor.mean_std[0], "std": predictor.mean_std[1], "applied": "inside the model"},
        "outputs": predictor.task.outputs,
    }
    files = {**earlier.get("files", {}), fmt: {"file": name, "max_difference_from_pytorch": difference}}
    (out / "model.json").write_text(json.dumps(model | {"files": files}, indent=2))
    return (f"wrote {out / name} and {out / 'model.json'}: trial {chosen.number} of {study.study_name!r}; on {len(images)} "
            f"test images its outputs differ from PyTorch's by at most {difference:.2g}")


def earlier_export(out: Path, study: str, trial: int) -> dict:
    """The card of the exports already in `out`: of the same trial, kept (one card names each format's file);
    of another model, refused in one line, before any work."""
    card = out / "model.json"
    if not card.is_file():
        return {}
    try:
        earlier = json.loads(card.read_text())
        same = (earlier["study"], earlier["trial"]) == (study, trial)
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{card} is not an hpsearch export's card: export into another folder with --out") from None
    if not same:
        raise InputError(f"{out} holds the export of trial {earlier['trial']} of study {earlier['study']!r}: export trial {trial} "
                   f"into another folder with --out")
    return earlier if "files" in earlier else {}
