"""How a study searches: start-up trials spread over the space, samplers and pruners by name, kept by a study."""

import math

import optuna
import pytest
from conftest import TINY_SPACE

from search.study.config import RunConfig
from search.study.run import run
from search.study.strategy import START, make_sampler, prune_now
from trainers.errors import InputError


def first_lrs(sampler) -> list[float]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-2, log=True), n_trials=START)
    return [t.params["lr"] for t in study.trials]


def test_the_start_up_trials_take_one_stratum_each_and_are_not_random_searchs():
    spread = first_lrs(make_sampler("tpe", seed=0))
    strata = sorted(int(START * (math.log(v) - math.log(1e-5)) / (math.log(1e-2) - math.log(1e-5))) for v in spread)
    assert strata == list(range(START))  # each tenth of the log range once
    assert first_lrs(make_sampler("tpe", seed=0)) == spread  # reproducible
    assert not set(spread) & set(first_lrs(make_sampler("random", seed=0)))


@pytest.mark.parametrize("name", ["tpe", "random"])
def test_ruled_out_choices_are_never_drawn(name):
    def draw(ruled_out: set) -> list[str]:
        study = optuna.create_study(direction="maximize", sampler=make_sampler(name, seed=0, ruled_out={"model": ruled_out}))
        study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1e-1, log=True) * (
            {"a": 1, "b": 2, "c": 3}[t.suggest_categorical("model", ["a", "b", "c"])]), n_trials=3 * START)
        return [t.params["model"] for t in study.trials]

    assert set(draw(set())) == {"a", "b", "c"}  # "c" scores best: TPE would draw it most
    two = draw({"c"})
    assert set(two) == {"a", "b"}
    assert draw({"b", "c"}) == ["a"] * 3 * START  # one choice left: fixed to it


def test_no_trial_is_pruned_at_its_last_step():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = study.ask()
    trial.report(0.1, 5)  # far below the threshold: the pruner says stop
    assert trial.should_prune() and prune_now(trial, 4, 5) and not prune_now(trial, 5, 5)


def test_a_resumed_study_keeps_its_sampler_and_pruner(tiny_images, tmp_path):
    options = dict(space=str(TINY_SPACE), storage=f"sqlite:///{tmp_path / 'studies.db'}", study="tiny",
                   data=str(tiny_images), epochs=1, quiet=True)
    run(RunConfig(trials=1, sampler="random", pruner="halving", **options))
    run(RunConfig(trials=2, **options))  # no choice given: the study's own
    study = optuna.load_study(study_name="tiny", storage=options["storage"])
    assert study.user_attrs["search"] == {"sampler": "random", "pruner": "halving"} and len(study.trials) == 2
    with pytest.raises(InputError, match="study 'tiny' searches with --pruner halving: it keeps it; to try median"):
        run(RunConfig(trials=3, pruner="median", **options))
