import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from optuna_dashboard import get_note

from conftest import TINY_SPACE
from search.study.config import RunConfig
from search.study.run import run
from spaces import Space

BIN = Path(sys.executable).parent


def hpsearch(*args, cwd, check=True):
    result = subprocess.run([BIN / "hpsearch", *map(str, args)], cwd=cwd, capture_output=True, text=True, env=dict(os.environ))
    if check and result.returncode != 0:
        raise AssertionError(f"hpsearch {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def optuna_trials(storage: str, study: str) -> list[dict]:
    out = subprocess.run(
        [BIN / "optuna", "trials", "--storage", storage, "--study-name", study, "-f", "json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def test_a_study_runs_continues_to_n_and_stops_there(tiny_images, tmp_path):
    run_args = ["run", "--space", TINY_SPACE, "--data", tiny_images, "--quiet"]
    first = hpsearch(*run_args, "--trials", 3, cwd=tmp_path)
    assert (tmp_path / "studies.db").exists()  # the default storage, in the working directory
    assert "| test  |" in first.stdout + first.stderr  # the best model's train/valid/test table
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    trials = optuna_trials(storage, "tiny")  # Optuna's own CLI reads what we wrote
    assert len(trials) == 3 and {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}

    hpsearch(*run_args, "--trials", 5, cwd=tmp_path)
    trials = optuna_trials(storage, "tiny")
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3, 4]

    again = hpsearch(*run_args, "--trials", 5, cwd=tmp_path)
    assert "already has 5 finished trials" in again.stdout + again.stderr
    assert len(optuna_trials(storage, "tiny")) == 5

    study = optuna.load_study(study_name="tiny", storage=storage)
    best = study.best_trial
    assert {"total_params", "trainable_params", "epochs_run", "seconds", "device", "best_metrics", "weights_artifact"} <= set(best.user_attrs)
    assert best.user_attrs["total_params"] == 238_793 and best.user_attrs["device"] == "cpu"
    assert study.user_attrs["data"]["images"] == 36
    table = study.user_attrs["best_evaluation"]["table"]
    assert set(table) == {"train", "valid", "test"} and 0 <= table["test"]["f1_weighted"] <= 1
    assert list((tmp_path / "artifacts").iterdir())  # weights and splits.csv in the artifact store

    shown = hpsearch("best", cwd=tmp_path).stdout
    assert f"best trial {best.number}" in shown and "lr = " in shown
    weights = tmp_path / next(line.split(": ")[1] for line in shown.splitlines() if "model.safetensors: " in line)
    assert weights.is_file() and weights.read_bytes()[8:9] == b"{"  # a safetensors file: JSON header after its length
    status = hpsearch("status", cwd=tmp_path).stdout.splitlines()
    assert status[0].startswith("study 'tiny': ") and any("trials per hour" in line for line in status)
    assert "5 of 8 finished; about" in hpsearch("status", "--trials", 8, cwd=tmp_path).stdout
    hpsearch("export", "--csv", tmp_path / "trials.csv", cwd=tmp_path)
    header, *rows = (tmp_path / "trials.csv").read_text().splitlines()
    assert len(rows) == 5 and "params_lr" in header and ",seconds," in header and "system_attrs" not in header


def test_other_images_are_refused_and_nothing_stored_is_lost(tiny_images, tmp_path):
    run_args = ["run", "--space", TINY_SPACE, "--data", tiny_images, "--quiet", "--trials"]
    hpsearch(*run_args, 1, cwd=tmp_path)
    before = (tmp_path / "studies.db").read_bytes()
    (tiny_images / "circle" / "circle1.PNG").unlink()
    refused = hpsearch(*run_args, 2, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "was run on other images" in refused.stderr and "--new-study NAME" in refused.stderr
    assert "(36 files then, 35 now; 1 missing or relabelled, e.g. circle/circle1.PNG)" in refused.stderr
    assert (tmp_path / "studies.db").read_bytes() == before
    hpsearch(*run_args, 1, "--new-study", "fewer", cwd=tmp_path)
    taken = hpsearch(*run_args, 1, "--new-study", "fewer", cwd=tmp_path, check=False)
    assert taken.returncode == 2 and "study 'fewer' already exists" in taken.stderr


def test_a_worker_joining_while_the_first_records_the_study_checks_nothing_it_has_not_recorded(tiny_images, tmp_path):
    # A worker started beside the study's first one may find the study with its search choices but no data
    # recorded yet: it must treat the data as new, not fail looking for the recorded fingerprint.
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    half_made = optuna.create_study(storage=storage, study_name="tiny", direction="maximize")
    half_made.set_user_attr("search", {"sampler": "tpe", "pruner": "patient"})
    hpsearch("run", "--space", TINY_SPACE, "--data", tiny_images, "--quiet", "--trials", 1, cwd=tmp_path)
    assert optuna.load_study(study_name="tiny", storage=storage).user_attrs["data"]["images"] == 36


def test_bad_input_gives_one_line_before_any_work(tmp_path):
    missing = hpsearch("run", "--space", "checkbox", "--data", tmp_path / "nope", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"hpsearch: error: data path {tmp_path / 'nope'} does not exist: pass --data a folder of class folders or a CSV manifest"
    ]
    unknown = hpsearch("run", "--space", "chekbox", cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "unknown space 'chekbox'" in unknown.stderr
    none = hpsearch("best", cwd=tmp_path, check=False)
    assert none.returncode == 2 and "no database at studies.db" in none.stderr
    assert not (tmp_path / "studies.db").exists()


def nan_then_fine(trial) -> dict:
    # trial 1's loss becomes NaN, trial 2 runs out of memory (models of the broken_models fixture)
    return {
        "model": {1: "nan_cnn", 2: "greedy_cnn"}.get(trial.number, "baseline"),
        "batch_size": 8,
        "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
    }


def test_nan_and_out_of_memory_trials_are_recorded_and_the_study_goes_on(tiny_images, tmp_path, broken_models):
    space = Space(name="nan", task="classify", data=str(tiny_images), suggest=nan_then_fine, summary="",
                  image_size=16, resize="stretch", epochs=1)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run(RunConfig(space="nan", storage=storage, trials=3, quiet=True), space)
    trials = optuna.load_study(study_name="nan", storage=storage).trials
    assert [t.state for t in trials].count(TrialState.FAIL) == 2
    assert trials[1].state == TrialState.FAIL and "nan" in trials[1].user_attrs["fail_reason"]
    assert trials[2].state == TrialState.FAIL and trials[2].user_attrs["fail_reason"].startswith("out of memory")
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3


def test_pretrained_weights_are_checked_once_before_any_trial(tiny_images, tmp_path):
    import timm
    from safetensors.torch import save_file

    from trainers.models import WeightsUnavailable

    def suggest(trial):
        return {"model": trial.suggest_categorical("model", ["baseline", "mobilenetv2_100"]), "batch_size": 8, "lr": 1e-3}

    space = Space(name="pre", task="classify", data=str(tiny_images), suggest=suggest, summary="",
                  image_size=16, resize="stretch", epochs=1, pretrained=True, trainable_blocks=2)
    weights = tmp_path / "weights"
    weights.mkdir()
    storage = f"sqlite:///{tmp_path / 's.db'}"
    options = dict(space="pre", storage=storage, trials=2, weights=str(weights), quiet=True)
    with pytest.raises(WeightsUnavailable, match="no weights for 'mobilenetv2_100' in"):
        run(RunConfig(**options), space)
    assert not (tmp_path / "s.db").exists()  # refused before any study was made

    save_file(timm.create_model("mobilenetv2_100", num_classes=0).state_dict(), str(weights / "mobilenetv2_100.safetensors"))
    run(RunConfig(**options), space)
    trials = optuna.load_study(study_name="pre", storage=storage).trials
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # pretrained mobilenet trains its last two blocks; the baseline trains all of itself
        frozen = t.user_attrs["trainable_params"] < t.user_attrs["total_params"]
        assert frozen == (t.params["model"] == "mobilenetv2_100")


def test_a_data_error_leaves_no_study_behind(tiny_images, tmp_path):
    for path in sorted((tiny_images / "circle").rglob("*.*"))[2:]:
        path.unlink()
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    failed = hpsearch("run", "--space", TINY_SPACE, "--data", tiny_images, "--storage", storage, "--quiet", cwd=tmp_path, check=False)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1].startswith("hpsearch: error: class 'circle' has 2 images")
    assert optuna.get_all_study_names(storage) == []


def wild(trial) -> dict:
    # trial 0: an lr that overflows Adam's step (a RuntimeError, no NaN); trial 1: an lr that learns nothing
    lr = {0: 4e37, 1: 10.0}.get(trial.number, trial.suggest_float("lr", 1e-3, 1e-2, log=True))
    return {"model": "baseline", "batch_size": 8, "lr": lr}


def test_an_error_fails_its_trial_and_chance_level_is_named(tiny_images, tmp_path):
    space = Space(name="wild", task="classify", data=str(tiny_images), suggest=wild, summary="", image_size=16,
                  resize="stretch", epochs=2)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    run(RunConfig(space="wild", storage=storage, trials=3, quiet=True), space)
    trials = optuna.load_study(study_name="wild", storage=storage).trials
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["fail_reason"] == "RuntimeError: value cannot be converted to type float without overflow"
    assert trials[1].state == TrialState.COMPLETE and trials[1].user_attrs["no_better_than_chance"] is True
    assert trials[1].user_attrs["chance_level"] == pytest.approx(trials[1].value, abs=0.1)
    assert trials[2].state == TrialState.COMPLETE and trials[2].user_attrs["no_better_than_chance"] is False
    note = get_note(optuna.Trial(optuna.load_study(study_name="wild", storage=storage), trials[1]._trial_id))
    assert "no better than chance" in note


def test_best_warns_of_a_chance_level_winner_and_five_failures_in_a_row_stop_the_run(tiny_images, tmp_path):
    for name, lr in (("chance", "10.0"), ("overflow", "4e37")):
        (tmp_path / f"{name}.py").write_text(
            "from spaces import Space, register\n"
            f"register(Space(name='{name}', task='classify', data='.', summary='', image_size=16, resize='stretch', "
            f"epochs=1, suggest=lambda t: {{'model': 'baseline', 'batch_size': 8, 'lr': {lr}}}))\n")
    hpsearch("run", "--space", tmp_path / "chance.py", "--data", tiny_images, "--trials", 1, "--quiet", cwd=tmp_path)
    shown = hpsearch("best", cwd=tmp_path).stdout.splitlines()
    assert shown[1].startswith("  warning: no better than chance: always giving the commonest answer scores 0.")
    failed = hpsearch("run", "--space", tmp_path / "overflow.py", "--data", tiny_images, "--trials", 20, "--quiet",
                      cwd=tmp_path, check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("hpsearch: 5 trials in a row failed, the last with 'RuntimeError: ")
    trials = optuna.load_study(study_name="overflow", storage=f"sqlite:///{tmp_path / 'studies.db'}").trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 5


def test_a_log_gets_one_line_per_trial_and_optunas_own_table_stays_small(tiny_images, tmp_path):
    log = tmp_path / "run.log"
    with open(log, "w") as out:  # as `make run > run.log` does: no terminal, so no progress bars
        command = [BIN / "hpsearch", "run", "--space", TINY_SPACE, "--data", tiny_images, "--trials", 3, "--epochs", 3]
        subprocess.run(list(map(str, command)), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "\r" not in text and "\x1b[" not in text, text
    assert [line.split()[1] for line in text.splitlines() if line.startswith("trial ")] == ["0", "1", "2"]
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    trials = optuna_trials(storage, "tiny")
    assert not [k for t in trials for k, v in t["user_attrs"].items() if isinstance(v, list)]  # no per-epoch history
    table = subprocess.run([BIN / "optuna", "trials", "--storage", storage, "--study-name", "tiny"], capture_output=True,
                           text=True, check=True).stdout
    assert len(table.splitlines()) == 3 + 4 and max(map(len, table.splitlines())) < 1000, table  # a row per trial, whatever its epochs
