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
from search.study.options import RunOptions
from search.study.run import run
from search.winner.models import has_weights, ranked
from spaces import get_space
from trainers.predict import Predictor


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished 6-trial study that kept the weights of its 3 best trials, and new images to predict."""
    folder = tmp_path_factory.mktemp("winner")
    images = write_tiny_images(folder / "images")
    run(RunOptions(space=get_space(str(TINY_SPACE)), storage=f"sqlite:///{folder / 'studies.db'}", study_name="tiny",
                   trials=6, epochs=1, keep=3, data=str(images), progress=False))  # 1 epoch: never pruned
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


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_export_gives_pytorchs_outputs_on_the_test_images(study, capsys, tmp_path, fmt):
    folder, new = study
    said = cli(capsys, folder, "export", "--format", fmt, "--out", tmp_path / fmt)
    assert "differ from PyTorch's by at most" in said
    card = json.loads((tmp_path / fmt / "model.json").read_text())
    assert card["input"]["dtype"] == "uint8" and card["classes"] == ["circle", "square", "stripe"] and card["image_size"] == 16
    cli(capsys, folder, "best", "--out", tmp_path / "best")
    best = Predictor.load(json.loads((tmp_path / "best" / "model.json").read_text()), tmp_path / "best" / "model.safetensors",
                          torch.device("cpu"))
    images = torch.stack([best.prepare(p)[0] for p in sorted(new.iterdir())])  # as the study decodes them
    if fmt == "onnx":
        import onnxruntime

        exported = onnxruntime.InferenceSession(str(tmp_path / fmt / card["file"])).run(None, {"images": images.numpy()})[0]
    else:
        with torch.no_grad():
            exported = torch.jit.load(str(tmp_path / fmt / card["file"]))(images).numpy()
    assert np.abs(exported - best(images).numpy()).max() < 1e-3


def test_evaluate_shows_the_ensemble_beside_the_best_trial(study, capsys):
    folder, _ = study
    said = cli(capsys, folder, "evaluate", "--ensemble", 3)
    assert said.startswith("best trial ") and "ensemble of trials " in said and said.count("| test  |") == 2
    assert said.strip().splitlines()[-1].startswith("test accuracy: ")


@pytest.fixture(scope="module")
def server(study):
    folder, _ = study
    port = free_port()
    command = [Path(sys.executable).parent / "hpsearch", "serve", "--port", str(port), "--ensemble", 2, "--max-bytes", 200_000,
               "--max-files", 3, "--max-pixels", 1_000_000]
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
    process.wait(timeout=10)


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
    rows = read_predictions(tmp_path / "p.csv")
    for a in answers:
        assert a["label"] == rows[a["file"]]["label"]
        assert a["probabilities"] == {c: pytest.approx(float(rows[a["file"]][f"p_{c}"]), abs=1e-6) for c in a["probabilities"]}
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
        server.wait(timeout=10)
