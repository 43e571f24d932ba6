"""Run a model that `hpsearch export --format onnx` wrote, with numpy, PIL and onnxruntime alone: each image
prepared as the card's `preparation` says (model.json), a CSV row of its label and class probabilities
(classification) written to the output.

    python deploy/without_hpsearch.py MODEL_DIR IMAGE... > predictions.csv
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
GREY = 114  # letterbox's fill; model.json's preparation names it


def to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in SIXTEEN_BIT:
        pixels = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and pixels.max() <= 1.0 else 65535.0
        img = Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("RGB")


def cut(img: Image.Image, crop) -> Image.Image:
    if not crop:
        return img
    w, h = img.size
    x0, y0 = round(crop["fractions"][0] * w), round(crop["fractions"][1] * h)
    return img.crop((x0, y0, max(round(crop["fractions"][2] * w), x0 + 1), max(round(crop["fractions"][3] * h), y0 + 1)))


def square(img: Image.Image, size: int, mode: str) -> np.ndarray:
    if mode == "stretch":
        return np.asarray(img.resize((size, size), Image.BILINEAR))
    w, h = img.size
    if mode == "pad-reflect":
        side = max(w, h)
        top, left = (side - h) // 2, (side - w) // 2
        padded = np.pad(np.asarray(img), ((top, side - h - top), (left, side - w - left), (0, 0)),
                        mode="reflect" if min(w, h) > 1 else "edge")
        return np.asarray(Image.fromarray(padded).resize((size, size), Image.BILINEAR))
    scale = size / max(w, h)  # letterbox
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = Image.new("RGB", (size, size), (GREY,) * 3)
    canvas.paste(img.resize((nw, nh), Image.BILINEAR), ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(canvas)


def prepare(path: str, card: dict) -> np.ndarray:
    how = card["preparation"]
    with Image.open(path) as img:
        rgb = cut(to_rgb(img), how["crop"])
    return square(rgb, how["resize"]["size"], how["resize"]["mode"]).transpose(2, 0, 1)  # HWC -> CHW


def main(folder: str, images: list[str]) -> None:
    card = json.loads((Path(folder) / "model.json").read_text())
    session = onnxruntime.InferenceSession(str(Path(folder) / card["files"]["onnx"]["file"]), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"images": np.stack([prepare(p, card) for p in images])})[0].astype(np.float64)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    writer = csv.writer(sys.stdout)
    writer.writerow(["image", "label", *(f"p_{c}" for c in card["classes"])])
    for path, p in zip(images, probabilities):
        writer.writerow([path, card["classes"][int(p.argmax())], *(f"{v:.6f}" for v in p)])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
