import optuna
import pytest
from optuna.trial import TrialState

from search.study.config import RunConfig
from search.study.run import run
from spaces import get_space, list_spaces
from trainers.errors import InputError


@pytest.mark.parametrize("space", list_spaces(), ids=lambda s: s.name)
def test_every_space_runs_a_trial_on_its_builtin_data(space, tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    evaluation = run(RunConfig(space=space.name, storage=storage, trials=1, epochs=1, quiet=True))
    study = optuna.load_study(study_name=space.name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert study.user_attrs["data"]["images"] >= 450
    assert 0 <= evaluation["table"]["test"][space.metric] <= 1
    assert "model: " in space.describe()


def test_a_space_file_registers_one_space(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "from spaces import Space, register\n"
        "register(Space(name='mine', task='classify', data='/data', summary='mine',\n"
        "               suggest=lambda t: {'model': 'baseline', 'batch_size': 8, 'lr': 1e-3}))\n"
    )
    assert get_space(str(path)).name == "mine"
    with pytest.raises(InputError, match="does not exist"):
        get_space(str(tmp_path / "missing.py"))
