import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from trainers.cache import decode_once
from trainers.data import discover
from trainers.errors import InputError
from trainers.images import load_rgb, resize_square
from trainers.prepare import prepare


def test_discovers_nested_images_with_any_case_of_extension(tiny_images):
    (tiny_images / "circle" / "notes.txt").write_text("not an image")
    (tiny_images / "circle" / ".hidden.png").write_bytes(b"ignored")
    found = discover(tiny_images)
    assert len(found.items) == 36
    assert Counter(i.label for i in found.items) == {"circle": 12, "square": 12, "stripe": 12}
    assert any(i.relpath.startswith("circle/nested/") for i in found.items)
    assert {i.path.suffix for i in found.items} == {".PNG", ".jpg"}
    assert found.skipped == [("circle/notes.txt", "not an image (extension .txt)")]


def test_manifest_paths_are_relative_to_the_csv_and_its_split_is_kept(tiny_images):
    rows = ["path,label,split"]
    for n, item in enumerate(discover(tiny_images).items):
        rows.append(f"images/{item.relpath},{item.label},{('train', 'valid', 'test')[n % 3]}")
    manifest = tiny_images.parent / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    prepared = prepare(str(manifest), 16, "stretch")
    by_path = {i.relpath: s for i, s in zip(prepared.decoded.items, prepared.split.assignment)}
    for line in rows[1:]:
        path, _, split = line.split(",")
        assert by_path[path] == split


def test_manifest_with_a_bad_split_value_is_refused(tiny_images, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,split\nimages/circle/circle1.PNG,circle,training\n")
    with pytest.raises(InputError, match="line 2: split 'training' is not one of train, valid, test"):
        discover(manifest)


def _bad_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(good, "PNG")
    (folder / "truncated.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (folder / "text.jpg").write_text("hello, I am not a JPEG")
    damaged = bytearray(good.getvalue())
    idat = damaged.index(b"IDAT") + 4
    damaged[idat : idat + 8] = b"\xff" * 8  # the structure stands, the pixel data is broken
    (folder / "corrupt.png").write_bytes(bytes(damaged))
    Image.new("1", (14000, 13000)).save(folder / "bomb.png")  # 182M pixels, over PIL's 2x limit


def test_each_kind_of_bad_file_is_left_out_with_its_reason(tiny_images):
    _bad_files(tiny_images / "square")
    found = discover(tiny_images)
    decoded = decode_once(found, 16, "stretch")
    reasons = {path.split("/")[-1]: reason for path, reason in decoded.skipped}
    assert reasons["truncated.png"].startswith("truncated")
    assert reasons["text.jpg"] == "not an image"
    assert reasons["corrupt.png"].startswith("corrupt")
    assert reasons["bomb.png"].startswith("decompression bomb")
    assert len(decoded.items) == 36 == len(decoded.images)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (30, 20), 128),
        lambda: Image.new("RGBA", (30, 20), (255, 0, 0, 0)),
        lambda: Image.new("CMYK", (30, 20), (0, 255, 255, 0)),
        lambda: Image.fromarray(np.full((20, 30), 40000, np.uint16)),
        lambda: _palette_with_transparency(),
    ],
    ids=["L", "RGBA", "CMYK", "16-bit", "P-transparent"],
)
def test_every_mode_loads_as_rgb(tmp_path, make):
    path = tmp_path / "image.tiff"
    make().save(path)
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (30, 20)


def _palette_with_transparency():
    img = Image.new("P", (30, 20), 0)
    img.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    img.info["transparency"] = 0
    return img


def test_transparent_pixels_become_white_and_16_bit_keeps_its_range(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_rgb(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tmp_path / "deep.png")
    assert load_rgb(tmp_path / "deep.png").getpixel((0, 0)) == (155, 155, 155)  # 40000 / 257


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "turned.jpg").size == (20, 40)


@pytest.mark.parametrize("mode", ["pad-reflect", "letterbox", "stretch"])
def test_resize_modes_make_squares(mode):
    wide = Image.fromarray(np.tile(np.arange(60, dtype=np.uint8), (20, 1))[..., None].repeat(3, 2))
    out = resize_square(wide, 24, mode)
    assert out.shape == (24, 24, 3) and out.dtype == np.uint8
    if mode == "letterbox":
        assert (out[0] == 114).all()  # padded rows above the image
    if mode == "pad-reflect":
        assert not (out[0] == 114).all() and out[0].std() > 0  # reflected image, not a flat fill


def test_clear_errors_before_any_work(tmp_path, tiny_images):
    with pytest.raises(InputError, match="does not exist"):
        prepare(str(tmp_path / "nowhere"), 16, "stretch")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(InputError, match="no usable images"):
        prepare(str(tmp_path / "empty"), 16, "stretch")
    shutil.rmtree(tiny_images / "square")
    shutil.rmtree(tiny_images / "stripe")
    with pytest.raises(InputError, match="only one class"):
        prepare(str(tiny_images), 16, "stretch")


def test_a_class_too_small_for_the_split_is_named_with_its_count(tiny_images):
    for path in sorted((tiny_images / "stripe").rglob("*.*"))[3:]:
        path.unlink()
    with pytest.raises(InputError, match="class 'stripe' has 3 images; a 0.6/0.2/0.2 split needs at least 5"):
        prepare(str(tiny_images), 16, "stretch")


def test_split_is_stratified(tiny_images):
    prepared = prepare(str(tiny_images), 16, "stretch")
    counts = prepared.counts()
    for label in ("circle", "square", "stripe"):
        assert (counts["train"][label], counts["valid"][label], counts["test"][label]) in {(7, 2, 3), (8, 2, 2), (7, 3, 2)}


SPLIT_IN_A_NEW_PROCESS = """
import sys
from trainers.prepare import prepare
p = prepare(sys.argv[1], 16, "stretch")
print(p.split_digest)
"""


def test_split_is_identical_across_processes_and_paths(tiny_images, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(tiny_images, moved)
    for path in list(moved.rglob("*.jpg")):  # other file names, same content
        path.rename(path.with_name("renamed_" + path.name))
    digests = set()
    for folder, hash_seed in ((tiny_images, "1"), (moved, "2")):
        out = subprocess.run(
            [sys.executable, "-c", SPLIT_IN_A_NEW_PROCESS, str(folder)],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    assert prepare(str(tiny_images), 16, "stretch").split_digest in digests


def test_images_are_decoded_once_across_runs(tiny_images, tmp_path):
    found = discover(tiny_images)
    first = decode_once(found, 16, "pad-reflect", root=tmp_path / "cache")
    second = decode_once(discover(tiny_images), 16, "pad-reflect", root=tmp_path / "cache")
    assert first.decoded == 36 and second.decoded == 0
    assert np.array_equal(first.images, second.images)
    other_size = decode_once(found, 20, "pad-reflect", root=tmp_path / "cache")
    assert other_size.decoded == 36 and other_size.images.shape == (36, 20, 20, 3)
    meta = json.loads(next((tmp_path / "cache" / "arrays").glob("*/meta.json")).read_text())
    assert meta["bad"] == {}


def test_a_space_may_cut_each_image_to_its_own_manifest_box(tiny_images, tmp_path):
    from trainers.images import resize_square

    items = discover(tiny_images).items
    rows = ["path,label,x_min,y_min,x_max,y_max"] + [f"images/{i.relpath},{i.label},4,2,{20 - n % 3},17" for n, i in enumerate(items)]
    manifest = tiny_images.parent / "boxes.csv"
    manifest.write_text("\n".join(rows) + "\n")
    decoded = decode_once(discover(manifest), 12, "stretch", root=tmp_path / "cache", crop="manifest")
    for item, pixels in zip(decoded.items, decoded.images):
        region = Image.open(item.path).convert("RGB").crop(tuple(round(v) for v in item.box))
        assert np.array_equal(pixels, resize_square(region, 12, "stretch"))
    with pytest.raises(InputError, match="cuts each image to its own box: pass --data a CSV manifest with the columns"):
        decode_once(discover(tiny_images), 12, "stretch", root=tmp_path / "cache", crop="manifest")


def test_a_files_digest_is_remembered_by_path_size_and_time_and_read_again_when_they_change(tiny_images):
    path = next((tiny_images / "circle").glob("*.PNG"))
    first = {i.relpath: i.digest for i in discover(tiny_images).items}
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # other content, same size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same time: taken for the same file, not read
    relpath = path.relative_to(tiny_images).as_posix()
    assert {i.relpath: i.digest for i in discover(tiny_images).items} == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = {i.relpath: i.digest for i in discover(tiny_images).items}
    assert again[relpath] != first[relpath] and {k: v for k, v in again.items() if k != relpath} == {k: v for k, v in first.items() if k != relpath}
