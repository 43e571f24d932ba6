"""A study that starts from an earlier study's model (--from): a real tiny localize study, then a real study
fine-tuning its best model, on the same image files; and what is refused, in one line, before any work."""

import json
import time

import optuna
import pytest
from optuna.trial import TrialState
from test_inputs import one_line_error
from test_resume import start
from test_study import hpsearch

from search.record import BEST_METRICS, MODEL_ARTIFACT, START_METRICS, STARTED_FROM
from search.storage import Location
from search.study.lineage import parse_from
from trainers.datasets.localize import render_localize
from trainers.models import create_model
from trainers.models.factory import blocks

BOXES_SPACE = '''
from spaces import Space, register


def suggest(trial) -> dict:
    return {"model": trial.suggest_categorical("model", ["baseline"]), "batch_size": 16,
            "lr": trial.suggest_float("lr", 1e-3, 3e-3, log=True)}


def fine_tune(trial) -> dict:
    return {"batch_size": 16, "lr": trial.suggest_float("lr", 1e-4, 1e-3, log=True),
            "trainable_blocks": trial.suggest_int("trainable_blocks", 1, 2)}


register(Space(name="boxes", task="localize", data="builtin:localize/manifest.csv", suggest=suggest, summary="tests",
               image_size=32, resize="letterbox", epochs=1, metric="hit_rate", fine_tune=fine_tune))
'''


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A folder holding a finished tiny localize study, `boxes`, its images and its space file."""
    folder = tmp_path_factory.mktemp("lineage")
    render_localize(folder / "shapes")
    (folder / "boxes.py").write_text(BOXES_SPACE)
    hpsearch("run", "--space", folder / "boxes.py", "--data", folder / "shapes" / "manifest.csv", "--trials", 1, "--quiet",
             cwd=folder)
    return folder


def studies(folder) -> tuple[str, object]:
    storage = f"sqlite:///{folder / 'studies.db'}"
    return storage, Location(storage).open()


def test_a_study_from_an_earlier_ones_best_starts_where_it_ended_and_names_it(earlier):
    run = ["run", "--space", earlier / "boxes.py", "--data", earlier / "shapes" / "manifest.csv", "--quiet"]
    hpsearch(*run, "--from", "boxes", "--new-study", "v2", "--trials", 1, cwd=earlier)
    storage, opened = studies(earlier)
    (source,) = optuna.load_study(study_name="boxes", storage=opened).trials
    v2 = optuna.load_study(study_name="v2", storage=opened)
    (trial,) = v2.trials
    # before its first epoch, the loaded model scores on the valid split what the earlier trial's best epoch did
    assert trial.intermediate_values[0] == pytest.approx(source.value, abs=1e-6)
    for name in ("valid_accuracy", "valid_iou", "valid_hit_rate"):
        assert trial.user_attrs[START_METRICS][name] == pytest.approx(source.user_attrs[BEST_METRICS][name], abs=1e-5)
    assert 1 in trial.intermediate_values  # then it trained
    assert set(trial.params) == {"lr", "trainable_blocks"}  # the space's fine-tuning search, not its model choice
    baseline_blocks = len(blocks(create_model("baseline", 7)))
    assert trial.user_attrs["trainable_params"] < trial.user_attrs["total_params"] and baseline_blocks == 6

    lineage = v2.user_attrs[STARTED_FROM]
    assert (lineage["study"], lineage["trial"], lineage["model"]) == ("boxes", 0, "baseline")
    with Location(storage).artifact_store(create=False).open_reader(trial.user_attrs[MODEL_ARTIFACT]) as reader:
        card = json.load(reader)
    assert card["started_from"]["study"] == "boxes" and card["started_from"]["trial"] == 0
    assert "start_weights" not in card["config"]  # a path on one machine: the card names the study instead
    assert "every trial started from study 'boxes' trial 0 (baseline" in hpsearch("best", "--study", "v2", cwd=earlier).stdout

    again = hpsearch(*run, "--study", "v2", "--trials", 2, check=False, cwd=earlier)  # without --from: refused
    assert again.returncode == 2 and "run it with --from boxes:0" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    hpsearch(*run, "--study", "v2", "--from", "boxes:0", "--trials", 2, cwd=earlier)  # with it: continued
    second = optuna.load_study(study_name="v2", storage=studies(earlier)[1]).trials[1]
    assert second.intermediate_values[0] == pytest.approx(source.value, abs=1e-6)


def test_a_killed_trial_from_an_earlier_model_resumes_where_it_stopped_and_still_starts_at_that_model(earlier):
    run = ["run", "--space", earlier / "boxes.py", "--data", earlier / "shapes" / "manifest.csv", "--quiet", "--from", "boxes",
           "--trials", 1, "--epochs", 3, "--heartbeat", 2, "--checkpoint-every", 0]
    worker = start(*run, "--new-study", "killed", cwd=earlier)
    opened = studies(earlier)[1]
    deadline = time.monotonic() + 900
    while not any(t.state == TrialState.RUNNING and len(t.intermediate_values) >= 3 for t in trials_of(opened, "killed")):
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()[0]
        time.sleep(0.2)
    worker.kill()  # after step 0 and two epochs
    worker.wait()
    hpsearch(*run, "--study", "killed", cwd=earlier)
    (source,) = optuna.load_study(study_name="boxes", storage=opened).trials
    (retried,) = [t for t in trials_of(opened, "killed") if t.state == TrialState.COMPLETE]
    assert retried.user_attrs["resumed_from_epoch"] >= 2 and set(retried.intermediate_values) == {0, 1, 2, 3}
    assert retried.intermediate_values[0] == pytest.approx(source.value, abs=1e-6)


def trials_of(opened, name: str) -> list:
    return optuna.load_study(study_name=name, storage=opened).trials if name in optuna.get_all_study_names(opened) else []


def test_what_a_study_from_an_earlier_one_refuses_before_any_work(earlier, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(earlier)
    run = ["run", "--space", earlier / "boxes.py", "--data", earlier / "shapes" / "manifest.csv", "--quiet", "--new-study", "v3"]
    assert "--from nothere: no study 'nothere'" in one_line_error(capsys, *run, "--from", "nothere")
    assert "trial 7 of study 'boxes' has no stored weights; trials with weights: 0" in one_line_error(capsys, *run, "--from", "boxes:7")
    assert "split its images with --seed 0" in one_line_error(capsys, *run, "--from", "boxes", "--seed", 1)
    assert "not from ImageNet's weights" in one_line_error(capsys, *run, "--from", "boxes", "--pretrained")
    render_localize(tmp_path / "other", seed=1)
    other = ["--data", tmp_path / "other" / "manifest.csv"]
    assert "trained its model on other images than" in one_line_error(capsys, *run, *other, "--from", "boxes")
    assert "v3" not in optuna.get_all_study_names(studies(earlier)[1])  # nothing was made


def test_a_from_argument_names_a_study_and_maybe_a_trial():
    assert parse_from("v1") == ("v1", None) and parse_from("v1:3") == ("v1", 3)
    assert parse_from("run:2024:7") == ("run:2024", 7) and parse_from("a:b") == ("a:b", None)
