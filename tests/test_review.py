"""Reviewing a study: the real optuna-dashboard and the HTML report, in a real headless Chromium."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from browser import chromium, dashboard
from conftest import TINY_SPACE
from optuna.artifacts import get_all_artifact_meta
from optuna_dashboard import get_note
from test_study import hpsearch

from search.storage import Location

TRIAL_FILES = {"learning_curves.png", "confusion_valid.png"}
BEST_FILES = TRIAL_FILES | {"confusion_test.png", "examples_test.png", "model.safetensors", "model.json"}


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """A finished 2-trial study of 2 epochs each, in studies.db with artifacts/ beside it."""
    folder = tmp_path_factory.mktemp("review")
    hpsearch("run", "--space", TINY_SPACE, "--trials", 2, "--epochs", 2, "--quiet", cwd=folder)
    return folder, f"sqlite:///{folder / 'studies.db'}"


def test_each_trial_has_its_pictures_notes_and_curves(reviewed):
    storage = Location(reviewed[1]).open()
    study = optuna.load_study(study_name="tiny", storage=storage)
    files = {t.number: {m.filename for m in get_all_artifact_meta(t, storage=storage)} for t in study.trials}
    assert files[0] == BEST_FILES  # the first trial is always the best so far when it ends
    assert files[1] in (TRIAL_FILES | {"model.safetensors", "model.json"}, BEST_FILES)  # among the 5 best: its weights kept
    assert all(len(t.intermediate_values) == 2 for t in study.trials)  # one valid metric per epoch
    note = get_note(optuna.Trial(study, study.trials[0]._trial_id))
    assert note.startswith("## Trial 0: complete") and "| 2" in note and "parameters" in note and "s on cpu" in note
    study_note = get_note(study)
    assert "| lr | 0.001 .. 0.01 (log) |" in study_note and "| batch_size | 4 \\| 8 |" in study_note
    assert study.user_attrs["data"]["fingerprint"] in study_note and "--trials 2 --epochs 2" in study_note


def test_dashboard_in_chromium_shows_the_study_its_artifacts_and_notes(reviewed, tmp_path):
    folder, storage = reviewed
    with dashboard(storage, folder, tmp_path / "dashboard.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/dashboard/")
        shows(page, "tiny")  # the study's name

        page.goto(f"{url}/dashboard/studies/1/trials")
        shows(page, "model.safetensors")
        body = page.inner_text("body")
        assert all(name in body for name in BEST_FILES), body[-2000:]
        assert "Trial 0: complete" in body  # the trial's note

        sources = page.eval_on_selector_all("img[src*='/artifacts/']", "imgs => imgs.map(i => i.src)")
        assert len(sources) == 4  # the four PNGs of the best trial
        for src in sources:
            response = page.request.get(src)
            assert response.status == 200 and response.headers["content-type"] == "image/png"
        page.wait_for_function("[...document.images].filter(i => i.src.includes('/artifacts/')).every(i => i.naturalWidth > 0)")
        page.screenshot(path=tmp_path / "dashboard_trial.png")

        page.goto(f"{url}/dashboard/studies/1/note")
        shows(page, "Search space")  # the study's note

        page.goto(f"{url}/dashboard/studies/1")
        shows(page, "against latency: the front")  # the front's figure among the study's plots
    assert (tmp_path / "dashboard_trial.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / 'dashboard_trial.png'}")


def shows(page, text: str) -> None:
    page.wait_for_function("text => document.body.innerText.includes(text)", arg=text, timeout=300_000)


def test_report_page_opens_in_chromium_with_no_console_errors(reviewed, tmp_path):
    folder, _ = reviewed
    out = hpsearch("report", "--out", tmp_path / "report", cwd=folder)
    page_path = tmp_path / "report" / "index.html"
    assert str(page_path) in out.stdout
    errors = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg")
        plots = page.locator(".plotly-graph-div").count()
        pictures = page.eval_on_selector_all("img", "imgs => imgs.filter(i => i.naturalWidth > 0).length")
        text = page.inner_text("body")
        front = page.locator("h2:has-text('The front') + div .plotly-graph-div").inner_text()
        page.screenshot(path=tmp_path / "report.png", full_page=True)
    assert errors == []
    assert "Valid f1_weighted against latency: the front" in front and "ms per image" in front
    assert plots >= 5 and pictures == 4  # front, history, curves, coordinates, slices (+ importances with 2 params varying)
    assert "Best trial" in text and "test" in text


def test_dashboard_refuses_clearly_and_warns_off_loopback(tmp_path):
    missing = hpsearch("dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "no database at" in missing.stderr
    (tmp_path / "studies.db").touch()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = hpsearch("dashboard", "--port", busy.getsockname()[1], cwd=tmp_path, check=False)
    assert taken.returncode == 2 and "pick another --port" in taken.stderr
    assert len(taken.stderr.strip().splitlines()) == 1

    command = [Path(sys.executable).parent / "hpsearch", "dashboard", "--host", "0.0.0.0", "--port", "0"]
    server = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        warning = server.stderr.readline()
    finally:
        server.terminate()
        server.wait(timeout=120)
    assert "warning" in warning and "no authentication" in warning


def test_status_and_best_say_where_things_are(reviewed):
    folder, _ = reviewed
    shown = hpsearch("status", "--trials", 10, cwd=folder).stdout
    assert "trials per hour" in shown and "2 of 10 finished" in shown and "minutes to go" in shown
    assert "pruning saved 0% (tpe-per-second sampler, patient pruner): 4 epochs run, against 4 for every finished trial to its end" in shown
    best = hpsearch("best", cwd=folder).stdout
    assert all(f"  {name}: {folder / 'artifacts'}" in best for name in BEST_FILES)
    card = Path(best.split("model.json: ")[1].splitlines()[0])
    assert card.parent == folder / "artifacts" and json.loads(card.read_text())["class_names"] == [str(d) for d in range(10)]


def test_dashboard_refuses_foreign_hosts_and_other_sites_changes_but_its_own_page_works(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for name in ("kept", "throwaway"):
        optuna.create_study(study_name=name, storage=storage)

    with dashboard(storage, tmp_path, tmp_path / "dashboard.log") as url:
        host = url.removeprefix("http://")
        assert answer(f"{url}/api/studies", Host="attacker.example") == 403  # DNS rebinding: a foreign name, our address
        assert answer(f"{url}/api/studies/1", "DELETE", Origin="http://attacker.example") == 403  # a cross-site request
        assert answer(f"{url}/api/studies/1", "DELETE", Host=f"attacker.example:{host.split(':')[1]}") == 403
        assert sorted(optuna.get_all_study_names(storage)) == ["kept", "throwaway"]  # nothing deleted
        assert answer(f"{url}/api/studies", Host=f"localhost:{host.split(':')[1]}") == 200
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{url}/dashboard/")
            shows(page, "throwaway")
            # the page's own requests carry its Origin: a change from there is the user's
            deleted = page.evaluate("fetch('/api/studies/2', {method: 'DELETE'}).then(r => r.status)")
    assert deleted in (200, 204) and optuna.get_all_study_names(storage) == ["kept"]


def answer(url: str, method: str = "GET", **headers) -> int:
    """The status of a request through a real HTTP client (urllib), refusals included."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_dashboard_on_every_address_answers_at_the_url_it_prints_and_to_the_names_allowed(wildcard, tmp_path):
    import re
    import time

    from browser import free_port

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="kept", storage=storage)
    port = free_port()
    command = [Path(sys.executable).parent / "hpsearch", "dashboard", "--host", wildcard, "--port", str(port),
               "--allow-host", "optuna.example"]
    server = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = re.search(r"open (http://\S+)/dashboard/", server.stdout.readline()).group(1)
        deadline = time.monotonic() + 600
        while answer(f"http://127.0.0.1:{port}/api/studies") != 200:  # up (raises while it starts)
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.2)
        ip = printed.removeprefix("http://").rsplit(":", 1)[0]
        assert not ip.startswith("127.") and answer(f"{printed}/api/studies") == 200  # the URL it says works
        if wildcard == "::":  # IPv6, and IPv4 through the same socket
            assert answer(f"http://[::1]:{port}/api/studies") == 200
        assert answer(f"http://127.0.0.1:{port}/api/studies", Host="optuna.example") == 200  # allowed, any port
        assert answer(f"http://127.0.0.1:{port}/api/studies", Host=f"optuna.example:{port}") == 200
        assert answer(f"http://127.0.0.1:{port}/api/studies", Host=f"attacker.example:{port}") == 403
        assert answer(f"{printed}/api/studies/1", "DELETE", Origin="http://attacker.example") == 403
        assert optuna.get_all_study_names(storage) == ["kept"]
    finally:
        server.terminate()
        server.wait(timeout=120)
    assert "warning" in server.stderr.read()
