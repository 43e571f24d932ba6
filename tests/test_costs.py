"""What a model costs to use, measured before it trains, and limits that skip training the configurations
that cannot meet them."""

import json
import re
import subprocess
import time
import urllib.request

import optuna
import pytest
import torch
from optuna.trial import TrialState
from browser import free_port
from test_study import BIN, hpsearch

from search.objectives import ensemble_candidate, ensemble_costs, front_trials, name_of
from search.record import BEST_METRICS, COSTS, PRUNED_REASON, StudyRecord, record_run, steps_run
from search.storage import Location
from search.study.feasible import architectures
from search.study.training import Training
from search.winner.models import has_weights
from search.winner.pick import pick
from spaces import get_space
from trainers.costs import CPU_THREADS, SERVING_BATCH, CostLimits, Costs, measure, measure_once

LIMITED_SPACE = '''
from spaces import Space, register


def suggest(trial) -> dict:  # every other trial a model of 11 million parameters
    return {"model": "resnet18" if trial.number % 2 == 0 else "baseline", "batch_size": 8,
            "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)}


register(Space(name="limited", task="classify", data="builtin:digits", suggest=suggest, summary="tests",
               image_size=16, resize="stretch", epochs=1))
'''


def test_a_model_costs_what_its_layers_count():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    costs = measure(model, (4, 4), torch.device("cpu"))
    assert costs.params == 48 * 5 + 5 and costs.mb == costs.params * 4 / 1e6
    assert costs.flops == 2 * 48 * 5  # a multiply-add per weight, per image
    assert costs.ms > 0 and costs.throughput > 0 and costs.device == "cpu" and costs.threads == CPU_THREADS == 1
    assert SERVING_BATCH > 1
    limits = CostLimits(params=100, mb=1.0)
    assert limits.constraints(costs) == {"params": 145, "mb": costs.mb - 1.0}
    assert limits.over(costs) == "params 245 > 100" and not CostLimits()


def test_a_machine_measures_a_model_once_and_keeps_its_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("HPSEARCH_CACHE", str(tmp_path))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    first = measure_once(model, (8, 8), torch.device("cpu"))
    (kept,) = (tmp_path / "costs").glob("*.json")
    assert json.loads(kept.read_text()) == first.as_record()
    kept.write_text(json.dumps(first.as_record() | {"ms": 123.0}))  # what the machine keeps is what it gives
    assert measure_once(model, (8, 8), torch.device("cpu")) == Costs(**first.as_record() | {"ms": 123.0})
    measure_once(model, (12, 12), torch.device("cpu"))  # another size is another figure
    assert len(list((tmp_path / "costs").glob("*.json"))) == 2

TRADE_OFF_SPACE = '''
from spaces import Space, register


def suggest(trial) -> dict:  # a fast model that learns nothing (a learning rate of 1e-7), a slower one that learns
    fast = trial.number % 2 == 0
    return {"model": "baseline" if fast else "attention_cnn", "batch_size": 8,
            "lr": trial.suggest_float("lr", 1e-7, 2e-7, log=True) if fast else trial.suggest_float("lr_slow", 2e-3, 4e-3, log=True)}


register(Space(name="tradeoff", task="classify", data="builtin:digits", suggest=suggest, summary="tests",
               image_size=16, resize="stretch", epochs=2))
'''


def test_configurations_over_a_limit_are_recorded_infeasible_without_training(tiny_images, tmp_path):
    (tmp_path / "limited.py").write_text(LIMITED_SPACE)
    run = hpsearch("run", "--space", tmp_path / "limited.py", "--data", tiny_images, "--trials", 4, "--max-params", 1_000_000,
                   "--quiet", cwd=tmp_path)
    assert (run.stdout + run.stderr).count("over a limit, not trained") == 2
    trials = optuna.load_study(study_name="limited", storage=f"sqlite:///{tmp_path / 'studies.db'}").trials
    assert len(trials) == 4 and all(COSTS in t.user_attrs for t in trials)
    big, small = trials[0::2], trials[1::2]
    for trial in big:  # resnet18: pruned at once, with Optuna's constraint for the sampler to learn from
        assert trial.state == TrialState.PRUNED and trial.user_attrs[steps_run("epoch")] == 0
        assert trial.user_attrs[COSTS]["params"] > 10_000_000 and trial.constraints["params"] > 0
        assert "over the limit (params 11,1" in trial.user_attrs[PRUNED_REASON] and not trial.intermediate_values
    assert all(t.state == TrialState.COMPLETE and t.constraints["params"] <= 0 for t in small)
    assert small[0].user_attrs[COSTS] == small[1].user_attrs[COSTS]  # one architecture, measured once
    exported = hpsearch("export", "--csv", tmp_path / "trials.csv", cwd=tmp_path)
    header = (tmp_path / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"cost_ms", "cost_throughput", "cost_params", "cost_mb", "cost_flops"} <= set(header), exported.stdout
    best = hpsearch("best", cwd=tmp_path)
    assert any(f"best trial {t.number}," in best.stdout for t in small)  # feasible
    front = hpsearch("front", cwd=tmp_path).stdout
    assert "limits: params <= 1e+06" in front
    best_value = max(t.value for t in small)
    assert {int(line.split("|")[1]) for line in front.splitlines() if line.startswith("| ") and line[2].isdigit()} == {
        min(t.number for t in small if t.value == best_value)}  # one architecture, one cost: the better (the first of equals)

    # --pick: serve the trial a rule picks, and say its costs; a rule that picks nothing ends in one line
    chosen = min(small, key=lambda t: (-t.value, t.number))
    port = free_port()
    server = subprocess.Popen([BIN / "hpsearch", "serve", "--pick", "best ms<=100000", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        model = wait_for_json(f"http://127.0.0.1:{port}/model", server)
    finally:
        server.terminate()
        said = server.communicate(timeout=120)[0]
    assert said.strip().splitlines()[-1] == "hpsearch: stopped by SIGTERM", said  # a server continues no study
    assert [t["number"] for t in model["trials"]] == [chosen.number]
    assert model["trials"][0]["costs"] == chosen.user_attrs[COSTS]
    refused = hpsearch("serve", "--pick", "best ms<=0.000001", "--port", free_port(), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "hpsearch: error: --pick 'best ms<=0.000001': none of the 2 trials with kept weights and costs has ms <= 1e-06; "
        "see them with `hpsearch front`, or keep more with `run --keep`"]


CHOICE_SPACE = '''
from spaces import Space, register


def suggest(trial) -> dict:
    return {"model": trial.suggest_categorical("model", ["resnet18", "baseline"]), "batch_size": 8,
            "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)HEAD}


register(Space(name="choice", task="classify", data="builtin:digits", suggest=suggest, summary="tests",
               image_size=16, resize="stretch", epochs=1, default={"model": "resnet18", "lr": 0.005}))
'''


def test_a_model_over_a_limit_whatever_else_is_drawn_is_never_drawn(tiny_images, tmp_path):
    (tmp_path / "choice.py").write_text(CHOICE_SPACE.replace("HEAD", ""))
    run = hpsearch("run", "--space", tmp_path / "choice.py", "--data", tiny_images, "--trials", 3, "--max-params", 1_000_000,
                   "--quiet", cwd=tmp_path)
    ruled_out = [line for line in run.stdout.splitlines() if line.startswith("not drawn")]
    assert len(ruled_out) == 1 and re.fullmatch(
        r"not drawn, over the limits whatever else a trial draws: resnet18 \(params 11,1\d\d,\d\d\d > 1,000,000\)", ruled_out[0])
    trials = optuna.load_study(study_name="choice", storage=f"sqlite:///{tmp_path / 'studies.db'}").trials
    assert [t.params["model"] for t in trials] == ["baseline"] * 3  # the space's default (resnet18) not queued either
    assert all(t.state == TrialState.COMPLETE and t.constraints["params"] <= 0 for t in trials)
    for command in ("status", "front"):  # the study says later which models its limits kept out
        assert ruled_out[0] in hpsearch(command, cwd=tmp_path).stdout.splitlines(), command

    refused = hpsearch("run", "--space", tmp_path / "choice.py", "--data", tiny_images, "--trials", 4, "--max-params", 100,
                       "--quiet", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"hpsearch: error: no model of space 'choice' meets the limits: {ruled_out[0].split(': ')[1].replace('1,000,000', '100')}; "
        f"baseline (params {trials[0].user_attrs[COSTS]['params']:,} > 100); raise --max-ms, --max-params or --max-mb"], refused.stderr
    assert len(optuna.load_study(study_name="choice", storage=f"sqlite:///{tmp_path / 'studies.db'}").trials) == 3


def test_a_model_whose_head_is_searched_is_measured_trial_by_trial(tmp_path):
    (tmp_path / "plain.py").write_text(CHOICE_SPACE.replace("HEAD", ""))
    (tmp_path / "head.py").write_text(CHOICE_SPACE.replace("HEAD", ', "hidden": (trial.suggest_categorical("width", [8, 16]),)')
                                      .replace('"choice"', '"head"').replace('"lr": 0.005', '"lr": 0.005, "width": 8'))
    for name, shapes in (("plain", 1), ("head", 2)):
        found = architectures(get_space(str(tmp_path / f"{name}.py")), Training())
        assert {model: len(kinds) for model, kinds in found.items()} == {"resnet18": shapes, "baseline": shapes}


def wait_for_json(url: str, process: subprocess.Popen, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.loads(answer.read())
        except OSError:
            time.sleep(0.5)


def test_the_front_is_every_trial_no_other_beats_on_metric_latency_and_size_at_once(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    figures = [(0.9, 5.0, 1.0), (0.8, 2.0, 1.0), (0.7, 3.0, 1.0), (0.7, 9.0, 0.5), (0.9, 5.0, 1.0)]
    for value, ms, mb in figures:
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={COSTS: {"ms": ms, "mb": mb}}))
    # 2 is beaten by 1 (slower and less accurate, no smaller); 0 and 4 tie, and 0 stands for both
    assert [t.number for t in front_trials(study)] == [0, 1, 3]


def test_a_multi_objective_study_keeps_its_front_and_serves_the_point_picked(tiny_images, tmp_path):
    (tmp_path / "tradeoff.py").write_text(TRADE_OFF_SPACE)
    run = hpsearch("run", "--space", tmp_path / "tradeoff.py", "--data", tiny_images, "--trials", 4, "--objectives",
                   "f1_weighted,ms", "--keep", 1, "--quiet", cwd=tmp_path)
    assert run.stdout.startswith("study 'tradeoff' optimizes f1_weighted (maximize), ms (minimize) with multi-objective "
                                 "TPE; its trials are not pruned"), run.stdout
    study = optuna.load_study(study_name="tradeoff", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    assert study.metric_names == ["f1_weighted", "ms"] and len(study.directions) == 2
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 4 and all(t.values[1] == t.user_attrs[COSTS]["ms"] for t in done)
    fast, slow = min(done, key=lambda t: t.values[1]), max(done, key=lambda t: t.values[0])
    assert fast.params.keys() == {"lr"} and slow.values[0] > fast.values[0]  # the trade-off the space makes

    table = hpsearch("front", cwd=tmp_path).stdout
    listed = [int(line.split("|")[1]) for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(listed) >= 2 and fast.number in listed and slow.number in listed, table
    store = Location(f"sqlite:///{tmp_path / 'studies.db'}").artifact_store(create=False)
    kept = [t.number for t in done if has_weights(store, t)]
    assert sorted(kept) == sorted(listed)  # --keep 1: the best, and the front besides (here the best is on it)

    # the fastest trial at least as accurate as the slow one's: the slow one, served by --pick, costs said
    bound = slow.values[0]
    chosen = min((t for t in done if t.number in kept and t.values[0] >= bound), key=lambda t: (t.values[1], t.number))
    port = free_port()
    server = subprocess.Popen([BIN / "hpsearch", "serve", "--pick", f"fastest f1_weighted>={bound}", "--port", str(port)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        model = wait_for_json(f"http://127.0.0.1:{port}/model", server)
    finally:
        server.terminate()
        said = server.communicate(timeout=120)[0]
    assert said.strip().splitlines()[-1] == "hpsearch: stopped by SIGTERM", said  # a server continues no study
    assert [t["number"] for t in model["trials"]] == [chosen.number] and model["trials"][0]["costs"] == chosen.user_attrs[COSTS]
    evaluated = hpsearch("evaluate", "--trial", fast.number, cwd=tmp_path).stdout
    assert evaluated.startswith(f"trial {fast.number}:\n") and "| test" in evaluated
    refused = hpsearch("predict", tiny_images, "--pick", "fastest f1_weighted>=1.5", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    changed = hpsearch("run", "--space", tmp_path / "tradeoff.py", "--data", tiny_images, "--trials", 5, "--objectives",
                       "f1_weighted,mb", cwd=tmp_path, check=False)
    assert changed.returncode == 2 and changed.stderr.strip() == (
        "hpsearch: error: study 'tradeoff' optimizes f1_weighted,ms: it keeps that; to search --objectives f1_weighted,mb, "
        "start a new study with --new-study NAME")


def test_the_ensemble_measured_is_a_candidate_of_the_front_and_of_pick(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    for value, ms in ((0.90, 2.0), (0.88, 1.0), (0.85, 3.0)):
        costs = {"ms": ms, "mb": 1.0, "throughput": 100.0, "params": 10, "flops": 20}
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={COSTS: costs, BEST_METRICS: {"valid_f1_weighted": value}}))
    trials = study.trials
    study.set_user_attr("ensemble", {"trials": [0, 1, 2], "metric": "f1_weighted", "valid": {"f1_weighted": 0.95},
                                     "test": {"f1_weighted": 0.93}, "costs": ensemble_costs(trials)})
    candidate = ensemble_candidate(study)
    assert candidate.user_attrs[COSTS]["ms"] == 6.0 and candidate.user_attrs[COSTS]["throughput"] == pytest.approx(100 / 3)
    front = front_trials(study, [candidate])
    assert [name_of(t) for t in front] == ["0+1+2", "0", "1"]  # trial 2 is beaten by trial 0; the ensemble by none
    assert name_of(pick(trials + [candidate], "best ms<=10")) == "0+1+2"
    assert name_of(pick(trials + [candidate], "best ms<=5")) == "0"
    assert name_of(pick(trials + [candidate], "fastest f1_weighted>=0.9")) == "0"


def test_the_limits_a_run_held_its_trials_to_are_recorded_on_the_study_and_said_by_front_and_status(tmp_path):
    """Recorded, not rebuilt from the trials' constraints: said even where no trial was measured against them."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=storage, study_name="held", direction="maximize")
    figures = {"ms": 1.5, "throughput": 900.0, "params": 1234, "mb": 0.5, "flops": 5678, "device": "cpu", "threads": 1}
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={COSTS: figures}))
    record_run(study, StudyRecord(search={"sampler": "tpe", "pruner": "none"}, epochs=1, trials_wanted=1, heartbeat=30, keep=5,
                                  metric="f1_weighted", ruled_out={}, limits=CostLimits(ms=2.0, params=1_000_000).most))
    assert StudyRecord.read(optuna.load_study(study_name="held", storage=storage)).limits == {"ms": 2.0, "params": 1_000_000}
    for command in ("front", "status"):
        said = hpsearch(command, "--storage", storage, cwd=tmp_path).stdout.splitlines()
        assert "limits: ms <= 2, params <= 1e+06" in said, (command, said)
    row = next(line for line in hpsearch("front", "--storage", storage, cwd=tmp_path).stdout.splitlines() if line.startswith("| 0 "))
    assert row == "| 0 | 0.9000 | 1.5 | 900 | 1,234 | 0.5 | 5,678 |"  # each cost as the table of costs prints it
