"""The best model in the time the user has: `run --timeout` (one deadline for every --jobs worker, on a real
PostgreSQL server and on SQLite), what each configuration is expected to take, and the sampler that weighs it."""

import optuna
import pytest
from conftest import TINY_SPACE
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from postgres import postgres_server
from test_resume import opened, password, trials  # noqa: F401 (a fixture)
from test_study import hpsearch

from search import record
from search.declare import duration
from search.objectives import best_trial
from search.record import StudyRecord, TrialRecord
from search.study.strategy import make_sampler
from trainers.errors import InputError

RUN = ["run", "--space", TINY_SPACE, "--quiet", "--pruner", "none"]


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as new_database:
        yield new_database


def check_budget_held(storage: str, timeout: float) -> list[optuna.trial.FrozenTrial]:
    """No trial started after the deadline; each trial still training then stopped within about an epoch,
    recorded pruned with `time budget`, its best epoch its value. Those trials."""
    study = optuna.load_study(study_name="tiny", storage=opened(storage))
    budget = StudyRecord.read(study).budget
    assert budget["seconds"] == timeout
    deadline = budget["deadline"]
    assert all(t.datetime_start.timestamp() <= deadline for t in study.trials), "a trial started after the deadline"
    stopped = [t for t in study.trials if TrialRecord.read(t).pruned_reason == record.TIME_BUDGET]
    assert stopped, [(t.number, t.state.name, t.user_attrs.get("pruned_reason")) for t in study.trials]
    for t in stopped:
        recorded = TrialRecord.read(t)
        assert t.state == TrialState.PRUNED and recorded.steps_run < 300
        epoch = recorded.training_seconds / recorded.steps_run
        # the epoch in progress at the deadline, then its files and record (a busy machine: a few seconds)
        assert t.datetime_complete.timestamp() - deadline < 2 * epoch + 10, (t.datetime_complete, deadline, epoch)
        assert t.user_attrs[record.BUDGET_VALUE] == max(t.intermediate_values.values())
    for t in study.trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):  # what it was expected to take, and what it took
            assert t.user_attrs[record.EXPECTED_SECONDS] > 0 and t.user_attrs[record.TRAINING_SECONDS] > 0
    return stopped


@pytest.mark.usefixtures("password")
def test_timeout_on_postgres_with_two_jobs_holds_for_both_and_the_same_command_continues(postgres, tiny_images, tmp_path):
    storage = postgres()
    args = [*RUN, "--storage", storage, "--data", tiny_images, "--trials", 50, "--epochs", 300, "--jobs", 2]
    first = hpsearch(*args, "--timeout", "40s", cwd=tmp_path)
    said = first.stdout + first.stderr
    assert "time budget of 40s spent: " in said and "the same command (with a new --timeout) continues" in said, said
    assert said.strip().splitlines()[-1].startswith("time budget of 40s spent"), said  # the run's last line
    stopped = check_budget_held(storage, 40)
    workers = {TrialRecord.read(t).worker for t in optuna.load_study(study_name="tiny", storage=opened(storage)).trials}
    assert len(workers) == 2, workers  # both processes ran trials, on one deadline
    before = len(trials(storage))
    status = hpsearch("status", "--storage", storage, "--study", "tiny", cwd=tmp_path).stdout
    assert "time budget (--timeout) of the latest run: 40s, spent" in status, status
    hpsearch(*args, "--timeout", "30s", cwd=tmp_path)
    study = optuna.load_study(study_name="tiny", storage=opened(storage))
    assert len(study.trials) > before and StudyRecord.read(study).budget["seconds"] == 30
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    assert {t.number for t in stopped} <= {t.number for t in study.trials if t.state == TrialState.PRUNED}


def test_timeout_on_sqlite_and_trials_whichever_comes_first(tiny_images, tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    done = hpsearch(*RUN, "--storage", storage, "--data", tiny_images, "--trials", 2, "--epochs", 1, "--timeout", "1h",
                    cwd=tmp_path)
    last = (done.stdout + done.stderr).strip().splitlines()[-1]
    assert last.startswith("2 trials finished in ") and "within the time budget of 1h 00m" in last, last
    hpsearch(*RUN, "--storage", storage, "--data", tiny_images, "--trials", 50, "--epochs", 300, "--timeout", "20s",
             cwd=tmp_path)
    check_budget_held(storage, 20)


def test_a_trial_the_budget_stopped_can_be_the_best_with_its_best_epoch():
    study = optuna.create_study(direction="maximize")
    distributions = {"lr": FloatDistribution(1e-4, 1e-1, log=True)}
    study.add_trial(create_trial(value=0.80, params={"lr": 0.01}, distributions=distributions))
    stopped = create_trial(state=TrialState.PRUNED, params={"lr": 0.02}, distributions=distributions,
                           intermediate_values={1: 0.85, 2: 0.83},
                           user_attrs={record.PRUNED_REASON: record.TIME_BUDGET, record.BUDGET_VALUE: 0.85})
    study.add_trial(stopped)
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"lr": 0.03}, distributions=distributions,
                                 intermediate_values={1: 0.9}))  # pruned by the pruner: never the best
    best = best_trial(study)
    assert best.number == 1 and best.state == TrialState.PRUNED


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("20m", 1200), ("2h", 7200), ("1h30m", 5400), ("600", 600)])
def test_durations_as_users_write_them(text, seconds):
    assert duration(text) == seconds


def test_a_bad_timeout_is_one_line_and_exit_2(tmp_path):
    for bad in ("5x", "soon", "0s"):
        result = hpsearch(*RUN, "--timeout", bad, cwd=tmp_path, check=False)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "--timeout" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "studies.db").exists()


def cheap_or_dear(name: str, seed: int, trials: int = 25) -> list[str]:
    """The models a sampler draws where one costs 100 times the other and both score alike."""
    seconds = lambda params: {"cheap": 1.0, "dear": 100.0}.get(params.get("model"), 50.5)  # noqa: E731
    study = optuna.create_study(direction="maximize", sampler=make_sampler(name, seed, seconds=seconds))

    def objective(trial):
        trial.suggest_categorical("model", ["cheap", "dear"])
        return -abs(trial.suggest_float("lr", 1e-4, 1e-1, log=True) - 0.01)

    study.optimize(objective, n_trials=trials)
    return [t.params["model"] for t in study.trials]


def test_the_cost_aware_sampler_tries_each_model_then_spends_its_time_on_the_cheap_one():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for seed in range(3):
        per_second, plain = cheap_or_dear("tpe-per-second", seed), cheap_or_dear("tpe", seed)
        assert per_second[:5].count("dear") == 1 and per_second[:5].count("cheap") == 4  # each choice once in the start-up
        assert per_second[5:].count("dear") < plain[5:].count("dear"), (per_second, plain)
        assert per_second[5:].count("dear") <= 2


def test_an_unknown_duration_names_the_forms():
    with pytest.raises(InputError, match="90s, 20m, 2h or 1h30m"):
        duration("tomorrow")
