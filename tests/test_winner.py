"""Using the winner: the weights of the best trials kept, predictions and ensembles, exports checked against
PyTorch, and a real model server (uvicorn on a loopback port) driven by a real HTTP client."""

import csv
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from browser import free_port
from conftest import TINY_SPACE, write_tiny_images
from PIL import Image

from search.cli import main
from search.storage import Location
from search.study.config import RunConfig
from search.study.run import run
from search.winner.models import has_weights, ranked
from trainers.predict import Predictor


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished 6-trial study that kept the weights of its 3 best trials, and new images to predict."""
    folder = tmp_path_factory.mktemp("winner")
    images = write_tiny_images(folder / "images")
    run(RunConfig(space=str(TINY_SPACE), storage=f"sqlite:///{folder / 'studies.db'}", study="tiny",
                  trials=6, epochs=1, keep=3, data=str(images), quiet=True))  # 1 epoch: never pruned
    new = write_tiny_images(folder / "new", per_class=3, seed=1)
    files = sorted(p for p in new.rglob("*") if p.is_file())
    (new / "flat").mkdir()
    for p in files:
        p.rename(new / "flat" / f"{p.parent.name}-{p.name}")
    return folder, new / "flat"


def cli(capsys, folder, *args) -> str:
    code = main([*map(str, args), "--storage", f"sqlite:///{folder / 'studies.db'}", "--artifacts", str(folder / "artifacts")])
    said = capsys.readouterr()
    assert code == 0, said.err
    return said.out


def test_keep_3_of_6_trials_leaves_the_3_best_with_weights(study):
    folder, _ = study
    trials = ranked(optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'studies.db'}"))
    store = Location(f"sqlite:///{folder / 'studies.db'}").artifact_store()
    assert len(trials) == 6 and [has_weights(store, t) for t in trials] == [True] * 3 + [False] * 3
    stored = {p.name for p in (folder / "artifacts").iterdir()}
    assert sum(t.user_attrs.get("weights_artifact") in stored for t in trials) == 3  # disk holds 3 models


def read_predictions(path: Path) -> dict[str, dict]:
    return {row["image"]: row for row in csv.DictReader(open(path))}


def test_predict_lists_a_corrupt_file_predicts_the_rest_and_an_ensemble_of_one_is_the_best_trial(study, capsys, tmp_path):
    folder, new = study
    (new / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    try:
        said = cli(capsys, folder, "predict", new, "--out", tmp_path / "one.csv", "--ensemble", 1)
    finally:
        (new / "broken.png").unlink()
    assert said.splitlines()[0].startswith("left out broken.png: ")
    assert "images/s" in said.splitlines()[-1] and "(1 left out)" in said
    one = read_predictions(tmp_path / "one.csv")
    assert len(one) == 9 and "broken.png" not in one

    cli(capsys, folder, "best", "--out", tmp_path / "best")  # the best trial's files, under their own names
    best = Predictor.load(json.loads((tmp_path / "best" / "model.json").read_text()), tmp_path / "best" / "model.safetensors",
                          torch.device("cpu"))
    for name, row in one.items():
        probabilities = best.task.probabilities(best(best.prepare(new / name)[0][None]))[0]
        assert [float(row[f"p_{c}"]) for c in best.class_names] == pytest.approx(probabilities.tolist(), abs=1e-6)
        assert row["label"] == best.class_names[int(probabilities.argmax())]

    cli(capsys, folder, "predict", new, "--out", tmp_path / "three.csv", "--ensemble", 3)
    three = read_predictions(tmp_path / "three.csv")
    assert set(three) == set(one) and any(three[n]["p_circle"] != one[n]["p_circle"] for n in one)  # three models averaged


def test_predict_reads_sub_folders_names_rows_by_path_and_fails_when_no_file_is_an_image(study, capsys, tmp_path):
    folder, _ = study
    images = folder / "images"  # the study's own folder: class folders, and a sub-folder in each
    cli(capsys, folder, "predict", images, "--out", tmp_path / "all.csv")
    rows = read_predictions(tmp_path / "all.csv")
    files = sorted(p.relative_to(images).as_posix() for p in images.rglob("*") if p.is_file())
    assert sorted(rows) == files and any("/nested/" in name for name in rows)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not an image")
    code = main(["predict", str(tmp_path / "bad"), "--out", str(tmp_path / "none.csv"), "--storage",
                 f"sqlite:///{folder / 'studies.db'}", "--artifacts", str(folder / "artifacts")])
    said = capsys.readouterr()
    assert code == 2 and len(said.err.strip().splitlines()) == 1 and "none of the 1 files" in said.err
    assert not (tmp_path / "none.csv").exists()


def test_exports_in_one_folder_share_one_card_and_each_gives_pytorchs_outputs(study, capsys, tmp_path):
    folder, new = study
    out = tmp_path / "model"
    for fmt in ("onnx", "torchscript", "exported"):
        said = cli(capsys, folder, "export", "--format", fmt, "--out", out)
        assert "differ from PyTorch's by at most" in said
    card = json.loads((out / "model.json").read_text())
    assert card["input"]["dtype"] == "uint8" and card["classes"] == ["circle", "square", "stripe"] and card["image_size"] == 16
    assert {fmt: f["file"] for fmt, f in card["files"].items()} == {"onnx": "model.onnx", "torchscript": "model.pt",
                                                                    "exported": "model.pt2"}
    cli(capsys, folder, "best", "--out", tmp_path / "best")
    best = Predictor.load(json.loads((tmp_path / "best" / "model.json").read_text()), tmp_path / "best" / "model.safetensors",
                          torch.device("cpu"))
    images = torch.stack([best.prepare(p)[0] for p in sorted(new.iterdir())])  # as the study decodes them
    import onnxruntime

    with torch.no_grad():
        exported = {"onnx": onnxruntime.InferenceSession(str(out / "model.onnx")).run(None, {"images": images.numpy()})[0],
                    "torchscript": torch.jit.load(str(out / "model.pt"))(images).numpy(),
                    "exported": torch.export.load(str(out / "model.pt2")).module()(images).numpy()}
        expected = best(images).numpy()
    for fmt, outputs in exported.items():
        assert np.abs(outputs - expected).max() < 1e-3, fmt

    other = ranked(optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'studies.db'}"))[1].number
    code = main(["export", "--format", "onnx", "--out", str(out), "--trial", str(other), "--storage",
                 f"sqlite:///{folder / 'studies.db'}", "--artifacts", str(folder / "artifacts")])
    said = capsys.readouterr()
    assert code == 2 and len(said.err.strip().splitlines()) == 1 and f"export trial {other} into another folder" in said.err
    assert json.loads((out / "model.json").read_text()) == card  # untouched


def test_evaluate_shows_the_ensemble_beside_the_best_trial(study, capsys):
    folder, _ = study
    said = cli(capsys, folder, "evaluate", "--ensemble", 3)
    assert said.startswith("best trial ") and "ensemble of trials " in said and said.count("| test  |") == 2
    assert said.strip().splitlines()[-1].startswith("test f1_weighted: ")  # the metric the study maximizes
    # the ensemble, recorded as a candidate beside the trials: its valid metric, and its members' costs added up
    chosen = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'studies.db'}")
    members = ranked(chosen)[:3]
    ensemble = chosen.user_attrs["ensemble"]
    assert ensemble["trials"] == [t.number for t in members] and ensemble["metric"] == "f1_weighted"
    assert ensemble["costs"]["ms"] == pytest.approx(sum(t.user_attrs["costs"]["ms"] for t in members))
    assert f"ensemble of trials {', '.join(str(t.number) for t in members)}" in cli(capsys, folder, "best")


@pytest.fixture(scope="module")
def server(study):
    folder, _ = study
    port = free_port()
    command = [Path(sys.executable).parent / "hpsearch", "serve", "--port", str(port), "--ensemble", 2, "--max-bytes", 200_000,
               "--max-files", 3, "--max-pixels", 1_000_000, "--max-request-pixels", 2_000_000, "--read-seconds", 5]
    log = open(folder / "serve.log", "w")
    process = subprocess.Popen(list(map(str, command)), cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        assert process.poll() is None and time.monotonic() < deadline, (folder / "serve.log").read_text()
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=120)


def post(url: str, files: list[tuple[str, str, bytes]], timeout: float = 30) -> tuple[int, object]:
    """A multipart POST of (field, file name, bytes) parts, as curl -F sends it."""
    boundary = uuid.uuid4().hex
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for field, name, data in files)
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/predict", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_served_answers_equal_predicts_and_twenty_clients_at_once_are_all_answered(study, server, capsys, tmp_path):
    folder, new = study
    files = sorted(new.iterdir())[:3]  # PNG and JPEG files
    assert {p.suffix for p in files} == {".PNG", ".jpg"}
    status, answers = post(server, [("file", p.name, p.read_bytes()) for p in files])
    assert status == 200 and [a["file"] for a in answers] == [p.name for p in files]
    cli(capsys, folder, "predict", *files, "--out", tmp_path / "p.csv", "--ensemble", 2)
    rows = read_predictions(tmp_path / "p.csv")  # a file named on the command line: its row named as given
    for a, path in zip(answers, files):
        assert a["label"] == rows[str(path)]["label"]
        assert a["probabilities"] == {c: pytest.approx(float(rows[str(path)][f"p_{c}"]), abs=1e-6) for c in a["probabilities"]}
    model = json.loads(urllib.request.urlopen(f"{server}/model").read())
    assert model["study"] == "tiny" and len(model["trials"]) == 2 and model["classes"] == ["circle", "square", "stripe"]

    results = []
    clients = [threading.Thread(target=lambda p=p: results.append(post(server, [("file", p.name, p.read_bytes())])[0]))
               for p in (files * 7)[:20]]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert results == [200] * 20


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def raw_request(url: str, head: str, body: bytes) -> str:
    """Send a request head and part of a body; the status line of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as s:
        s.sendall(head.encode() + body)
        return s.recv(4096).decode(errors="replace").splitlines()[0]


def test_bad_requests_get_their_4xx_quickly_and_the_server_goes_on(study, server):
    _, new = study
    image = next(new.iterdir()).read_bytes()
    host = server.removeprefix("http://")
    cases = {
        "too many files": ([("file", f"{n}.png", image) for n in range(4)], 413),
        "a decompression bomb": ([("file", "bomb.png", png_bytes(Image.new("1", (1100, 1000))))], 413),
        "not an image": ([("file", "notes.png", b"hello, I am not an image")], 415),
        "no file field": ([("picture", "x.png", image)], 422),
        "a body over --max-bytes": ([("file", "big.png", image + bytes(300_000))], 413),
    }
    for what, (files, expected) in cases.items():
        status, answer = post(server, files, timeout=120)
        assert status == expected, (what, status, answer)
        assert urllib.request.urlopen(f"{server}/healthz", timeout=120).status == 200
    assert "reason" in json.dumps(post(server, cases["not an image"][0])[1])
    # 100 MB announced: refused from its Content-Length, before the body is read (this client never sends the
    # rest: a server that waited for it would not answer at all)
    status = raw_request(server, f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                                 f"Content-Length: 100000000\r\n\r\n", bytes(65536))
    assert status.startswith("HTTP/1.1 413")
    status = raw_request(server, f"GET /healthz HTTP/1.1\r\nHost: evil.example:{host.split(':')[1]}\r\n\r\n", b"")
    assert status.startswith("HTTP/1.1 403")  # DNS rebinding, as the dashboard refuses it
    assert urllib.request.urlopen(f"{server}/healthz", timeout=120).status == 200


def test_a_request_with_a_bad_file_gets_the_good_ones_answered_and_the_bad_ones_reasons(study, server):
    _, new = study
    image = next(new.iterdir())
    status, answers = post(server, [("file", image.name, image.read_bytes()), ("file", "notes.png", b"not an image")])
    assert status == 200 and answers[0]["file"] == image.name and "label" in answers[0]
    assert answers[1]["file"] == "notes.png" and "label" not in answers[1] and answers[1]["error"]
    # 3 images of 0.9 million pixels, each under --max-pixels, are over --max-request-pixels together: the third is
    # refused from its header, the first two answered
    large = png_bytes(Image.new("RGB", (1000, 900), "white"))
    status, answers = post(server, [("file", f"{n}.png", large) for n in range(3)])
    assert status == 200 and ["label" in a for a in answers] == [True, True, False]
    assert "over 2,000,000 pixels together" in answers[2]["error"]


def test_slow_and_vanishing_clients_cost_one_line_each_and_no_held_connection(study, server):
    folder, _ = study
    host = server.removeprefix("http://")
    head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: 1000\r\n\r\n")
    slow = []  # 1,000 bytes announced, 10 sent: answered 408 once --read-seconds (5) are over
    threads = [threading.Thread(target=lambda: slow.append(raw_request(server, head, bytes(10)))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slow) == 5 and all(status.startswith("HTTP/1.1 408") for status in slow), slow
    address, port = host.split(":")
    with socket.create_connection((address, int(port)), timeout=60) as s:  # gone halfway through its body
        s.sendall(head.encode() + bytes(10))
    deadline = time.monotonic() + 120
    while "dropped POST /predict" not in (folder / "serve.log").read_text():
        assert time.monotonic() < deadline, (folder / "serve.log").read_text()
        time.sleep(0.2)
    logged = (folder / "serve.log").read_text()
    assert logged.count("refused POST /predict from 127.0.0.1: 408") >= 5 and "Traceback" not in logged
    assert urllib.request.urlopen(f"{server}/healthz", timeout=120).status == 200


def test_model_says_its_image_size_as_the_model_card_does(study, server, capsys, tmp_path):
    folder, _ = study
    model = json.loads(urllib.request.urlopen(f"{server}/model").read())
    cli(capsys, folder, "best", "--out", tmp_path / "best")
    card = json.loads((tmp_path / "best" / "model.json").read_text())
    assert model["image_size"] == card["image_size"] == 16 and [t["image_size"] for t in model["trials"]] == [16, 16]


def test_serve_on_every_address_answers_at_the_url_it_prints_and_to_the_names_allowed(study):
    import re

    from test_review import answer

    folder, _ = study
    port = free_port()
    command = [Path(sys.executable).parent / "hpsearch", "serve", "--host", "::", "--port", str(port), "--allow-host",
               "models.example"]
    server = subprocess.Popen(list(map(str, command)), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = re.search(r" on (http://\S+): POST", server.stdout.readline()).group(1)
        assert answer(f"{printed}/healthz") == 200 and answer(f"http://[::1]:{port}/healthz") == 200  # IPv4 and IPv6
        assert answer(f"http://[::1]:{port}/model", Host="models.example") == 200
        assert answer(f"http://[::1]:{port}/model", Host=f"attacker.example:{port}") == 403
    finally:
        server.terminate()
        server.wait(timeout=120)


def test_the_dashboard_offers_no_removed_weights(study, tmp_path):
    from browser import dashboard

    folder, _ = study
    trials = ranked(optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'studies.db'}"))
    with dashboard(f"sqlite:///{folder / 'studies.db'}", folder, tmp_path / "dashboard.log") as url:
        detail = json.loads(urllib.request.urlopen(f"{url}/api/studies/1", timeout=120).read())
        files = {t["number"]: {a["filename"]: a["artifact_id"] for a in t["artifacts"]} for t in detail["trials"]}
        assert [("model.safetensors" in files[t.number]) for t in trials] == [True] * 3 + [False] * 3
        dropped = [t for t in trials[3:] if "weights_artifact" in t.user_attrs]  # kept once, removed since
        assert dropped and all("model.json" in files[t.number] for t in dropped)  # the card stays
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/artifacts/1/{dropped[0]._trial_id}/{dropped[0].user_attrs['weights_artifact']}",
                                   timeout=120)
        assert refused.value.code == 404
    assert "Traceback" not in (tmp_path / "dashboard.log").read_text()


WITHOUT_HPSEARCH = Path(__file__).parent.parent / "deploy" / "without_hpsearch.py"
# runs the script, then fails if anything but numpy, PIL and onnxruntime (and the standard library) came along
ALONE = (f"import runpy, sys; sys.argv = [{str(WITHOUT_HPSEARCH)!r}, *sys.argv[1:]]; "
         f"runpy.run_path(sys.argv[0], run_name='__main__'); "
         f"came = {{m.split('.')[0] for m in sys.modules}} & {{'torch', 'search', 'trainers', 'spaces', 'optuna', 'timm'}}; "
         f"assert not came, came")


def odd_images(folder: Path) -> list[Path]:
    """An image of each kind the decoding converts: grey, palette, 16-bit, CMYK, transparent, turned by EXIF, not square."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (18, 30, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    made = {"grey.png": (rgb.convert("L"), {}), "palette.png": (rgb.convert("P"), {}),
            "sixteen.png": (Image.fromarray((rng.integers(0, 65536, (20, 20))).astype(np.uint16)), {}),
            "cmyk.jpg": (rgb.convert("CMYK"), {}), "turned.jpg": (rgb, {"exif": exif}),
            "transparent.png": (Image.fromarray(rng.integers(0, 256, (16, 24, 4), dtype=np.uint8), "RGBA"), {}),
            "tall.png": (rgb.transpose(Image.Transpose.ROTATE_90), {})}
    for name, (image, options) in made.items():
        image.save(folder / name, **options)
    return [folder / name for name in made]


def test_an_onnx_export_runs_without_hpsearch_as_hpsearch_predicts(study, capsys, tmp_path):
    import shutil

    folder, _ = study
    storage = f"sqlite:///{folder / 'studies.db'}"
    chosen = optuna.load_study(study_name="tiny", storage=storage)
    with Location(storage).artifact_store().open_reader(chosen.user_attrs["splits_artifact"]) as reader:
        split = list(csv.DictReader(io.TextIOWrapper(reader)))
    images = [folder / "images" / row["path"] for row in split if row["split"] == "test"] + odd_images(tmp_path / "odd")
    cli(capsys, folder, "export", "--format", "onnx", "--out", tmp_path / "model")
    cli(capsys, folder, "predict", *images, "--out", tmp_path / "hpsearch.csv")
    cli(capsys, folder, "best", "--out", tmp_path / "best")
    trained = json.loads((tmp_path / "best" / "model.json").read_text())
    for mode in ("stretch", "pad-reflect", "letterbox"):  # the study's own, then the others on the same model
        exported = tmp_path / mode
        shutil.copytree(tmp_path / "model", exported)
        card = json.loads((exported / "model.json").read_text())
        card["preparation"]["resize"]["mode"] = mode
        (exported / "model.json").write_text(json.dumps(card))
        alone = subprocess.run([sys.executable, "-c", ALONE, exported, *images], capture_output=True, text=True)
        assert alone.returncode == 0, alone.stderr[-2000:]
        theirs = {row["image"]: row for row in csv.DictReader(io.StringIO(alone.stdout))}
        if mode == trained["resize"]:
            ours = read_predictions(tmp_path / "hpsearch.csv")
        else:  # hpsearch's own preparation, by the trial's card with that resize
            best = Predictor.load(trained | {"resize": mode}, tmp_path / "best" / "model.safetensors", torch.device("cpu"))
            probabilities = best.task.probabilities(best(torch.stack([best.prepare(p)[0] for p in images])))
            ours = {str(p): {f"p_{c}": v for c, v in zip(best.class_names, row.tolist())} for p, row in zip(images, probabilities)}
        assert set(theirs) == {str(p) for p in images}
        for name, row in theirs.items():
            for c in trained["class_names"]:
                assert abs(float(row[f"p_{c}"]) - float(ours[name][f"p_{c}"])) <= 1e-4, (mode, name, c)
