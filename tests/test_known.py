"""Known configurations first: the space's default in a new study, and --enqueue's parameter sets from a file
or another study, each run once, before the sampler's own, by processes started together and run again."""

import json

import optuna
from conftest import TINY_SPACE
from optuna.trial import TrialState
from test_inputs import one_line_error
from test_resume import FINISHED, start
from test_study import hpsearch

from search.record import ENQUEUED, IMPORTED
from search.study.known import DEFAULT, Known, checked, duplicate_of, queue
from search.study.objective import NOT_RUN
from search.study.strategy import START
from spaces import get_space, list_spaces

DEFAULT_PARAMS = {"model": "baseline", "batch_size": 4, "lr": 0.005, "weight_decay": 1e-5}
SETS = [{"model": "baseline", "batch_size": 8, "lr": 0.002, "weight_decay": 1e-6},
        {"model": "baseline", "batch_size": 4, "lr": 0.009, "weight_decay": 5e-5}]


def space_with_default(tmp_path):
    """The tiny space, under another name, with a default configuration."""
    path = tmp_path / "known.py"
    path.write_text(TINY_SPACE.read_text().replace('name="tiny"', f'name="known", default={DEFAULT_PARAMS!r}'))
    return path


def study_trials(tmp_path, name="known") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'studies.db'}").trials


def test_a_study_builds_on_known_sets_run_once_and_first_and_on_an_earlier_studys_trials(tiny_images, tmp_path):
    space = space_with_default(tmp_path)
    run = ["run", "--space", space, "--data", tiny_images, "--quiet", "--epochs", 1, "--heartbeat", 10]
    hpsearch(*run, "--trials", 1, cwd=tmp_path)
    first = study_trials(tmp_path)
    assert first[0].params == DEFAULT_PARAMS and first[0].user_attrs[ENQUEUED] == DEFAULT  # the new study's first trial

    (tmp_path / "sets.json").write_text(json.dumps(SETS))
    processes = [start(*run, "--trials", 5, "--enqueue", "sets.json", cwd=tmp_path) for _ in range(3)]
    outputs = [p.communicate(timeout=1800)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    trials = study_trials(tmp_path)
    finished = [t for t in trials if t.state in FINISHED]
    known = [t for t in finished if t.user_attrs.get(ENQUEUED, DEFAULT) != DEFAULT]
    assert len(finished) == 5 and sorted(t.params["lr"] for t in known) == [0.002, 0.009]  # each set once
    assert [t.user_attrs[ENQUEUED] for t in sorted(known, key=lambda t: t.params["lr"])] == ["sets.json set 1", "sets.json set 2"]
    drawn = [t.number for t in finished if ENQUEUED not in t.user_attrs]
    assert drawn and max(t.number for t in known) < min(drawn)  # before the sampler's own
    assert all(t.user_attrs["fail_reason"] in NOT_RUN for t in trials if t.state == TrialState.FAIL)  # surplus or duplicate
    assert sum(t.params == DEFAULT_PARAMS for t in trials) == 1  # the default ran in the new study only

    hpsearch(*run, "--trials", 6, "--enqueue", "sets.json", cwd=tmp_path)  # again: nothing queued twice
    again = study_trials(tmp_path)
    assert len(again) == len(trials) + 1 and ENQUEUED not in again[-1].user_attrs

    # another study's best, as a new study's first trial; --no-default-first leaves the default out
    hpsearch(*run, "--trials", 1, "--new-study", "next", "--enqueue", "known", "--enqueue-top", 1, "--no-default-first",
             cwd=tmp_path)
    best = max((t for t in again if t.state == TrialState.COMPLETE), key=lambda t: (t.value, -t.number))
    (taken,) = study_trials(tmp_path, "next")
    assert taken.params == best.params and taken.user_attrs[ENQUEUED] == f"study known trial {best.number}"

    # a CSV that `hpsearch export --csv` wrote: its rows in order
    hpsearch("export", "--study", "known", "--csv", "trials.csv", cwd=tmp_path)
    hpsearch(*run, "--trials", 1, "--new-study", "from-csv", "--enqueue", "trials.csv", "--no-default-first", cwd=tmp_path)
    (row,) = [t for t in study_trials(tmp_path, "from-csv") if t.state in FINISHED]
    assert row.params == again[0].params and row.user_attrs[ENQUEUED] == "trials.csv line 2"

    # --learn-from: the earlier study's finished trials as the sampler's history, never counted nor the best
    learn = [*run, "--trials", 2, "--learn-from", "known"]
    hpsearch(*learn, "--new-study", "learned", "--no-default-first", cwd=tmp_path)
    hpsearch(*learn, "--study", "learned", cwd=tmp_path)  # again: nothing imported twice
    learned = study_trials(tmp_path, "learned")
    imported = [t for t in learned if IMPORTED in t.user_attrs]
    source = [t for t in again if t.state in FINISHED]
    assert [(t.params, t.values, t.user_attrs[IMPORTED]) for t in imported] == [
        (t.params, t.values, f"study known trial {t.number}") for t in source]
    own = [t for t in learned if IMPORTED not in t.user_attrs]
    assert len(own) == 2 and all(t.state in FINISHED for t in own)  # --trials 2 counts this study's own
    assert min(t.number for t in own) >= START  # numbered after the history: TPE draws from it, no spread start-up
    best = hpsearch("best", "--study", "learned", cwd=tmp_path).stdout
    assert any(f"best trial {t.number}," in best for t in own), best
    status = hpsearch("status", "--study", "learned", cwd=tmp_path).stdout
    assert f"and {len(source)} imported from another study" in status, status


def test_known_sets_that_do_not_fit_the_space_are_refused_in_one_line(tiny_images, tmp_path, capsys):
    run = ["run", "--quiet", "--space", TINY_SPACE, "--data", tiny_images, "--storage", f"sqlite:///{tmp_path / 'studies.db'}"]
    cases = {
        '[{"model": "baseline", "batch_size": 4, "lr": 0.5, "weight_decay": 1e-5}]':
            "--enqueue sets.json set 1: lr=0.5 is not one the space can choose (0.001 .. 0.01 (log))",
        '[{"model": "baseline", "batch_size": 4, "lr": 0.005}]':
            "--enqueue sets.json set 1: no value for weight_decay, which the space chooses (1e-06 .. 0.0001 (log))",
        '[{"model": "baseline", "batch_size": 4, "lr": 0.005, "weight_decay": 1e-5, "momentum": 0.9}]':
            "--enqueue sets.json set 1: momentum: not a parameter the space chooses (it chooses model, batch_size, lr, "
            "weight_decay); leave it out",
        '{"lr": 0.005}': '--enqueue {f}: a JSON file of parameter sets is a list of objects, e.g. [{{"lr": 0.001, "batch_size": 32}}]',
    }
    for text, said in cases.items():
        path = tmp_path / "sets.json"
        path.write_text(text)
        assert one_line_error(capsys, *run, "--enqueue", path) == "hpsearch: error: " + said.format(f=path)
    other = one_line_error(capsys, *run, "--learn-from", "v1")
    assert other.startswith("hpsearch: error: --learn-from v1: ")
    missing = one_line_error(capsys, *run, "--enqueue", "v1")
    assert missing.startswith("hpsearch: error: --enqueue v1: no file of that name, and ")
    assert not (tmp_path / "studies.db").exists()  # refused before any work


def test_a_set_queued_twice_by_processes_that_started_together_runs_once(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=storage, study_name="race")
    for _ in range(2):  # two processes, each finding the set not yet queued: skip_if_exists cannot stop the second
        study.enqueue_trial(SETS[0], user_attrs={ENQUEUED: "sets.json set 1"})
    queue(study, [Known(SETS[0], "sets.json set 1")])  # a third, later: skipped
    first, _ = study.ask(), study.ask()
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 and duplicate_of(trials[0], trials) is None and duplicate_of(trials[1], trials).number == 0
    study.tell(first, state=TrialState.FAIL)  # the first failed: the second is its run now, not a duplicate
    assert duplicate_of(study.get_trials(deepcopy=False)[1], study.get_trials(deepcopy=False)) is None


def test_each_built_in_spaces_default_is_one_of_its_configurations():
    defaults = {space.name: space.default for space in list_spaces() if space.default}
    assert {"checkbox", "ovr"} <= defaults.keys()  # the spaces whose seeds say how they trained
    for name, default in defaults.items():
        assert checked(get_space(name), default, "default") == default
