"""What a user gets wrong: each mistake stops the command with one line naming what is wrong and what to
do, exit code 2, no traceback, before any work, and nothing stored is lost. Through the CLI's own main(),
in this process (each command as a new process would cost seconds of imports)."""

import re
import sqlite3

import optuna
import pytest
from conftest import TINY_SPACE
from PIL import Image

from search.cli import main
from search.study.config import RunConfig
from search.study.run import run
from spaces import get_space

README = __import__("pathlib").Path(__file__).parent.parent / "README.md"


def one_line_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpsearch: error: "), err
    return lines[0]


def test_a_space_file_that_does_not_run(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("from spaces import Space, register\nregister(Space(name='x', task='classify'\n")
    assert f"space file {broken} line 2: '(' was never closed: fix the file" in one_line_error(capsys, "run", "--quiet", "--space", broken)
    unimported = tmp_path / "unimported.py"
    unimported.write_text("x = 1\nregister(Space(name='x'))\n")
    said = one_line_error(capsys, "run", "--quiet", "--space", unimported)
    assert f"space file {unimported} line 2: NameError: name 'register' is not defined" in said


def test_a_manifest_row_without_a_label(tiny_images, capsys):
    manifest = tiny_images / "manifest.csv"
    manifest.write_text("path,label\ncircle/circle1.PNG,circle\ncircle/circle3.PNG\n")
    said = one_line_error(capsys, "run", "--quiet", "--space", TINY_SPACE, "--data", manifest)
    assert said.endswith(f"manifest {manifest} line 3: no label: every row needs path,label: fill it in or remove the row")


def test_an_empty_class_folder_stops_the_run_naming_it(tiny_images, tmp_path, capsys):
    (tiny_images / "triangle").mkdir()
    (tiny_images / "triangle" / "README.txt").write_text("to do")
    said = one_line_error(capsys, "run", "--quiet", "--space", TINY_SPACE, "--data", tiny_images, "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert f"class folder {tiny_images / 'triangle'} holds no images" in said
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "artifacts").exists()  # nothing made


def test_a_database_of_a_schema_optuna_does_not_know(tmp_path, capsys):
    database = tmp_path / "studies.db"
    optuna.create_study(study_name="future", storage=f"sqlite:///{database}")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = 'v9.0.0.a'")
    before = database.read_bytes()
    said = one_line_error(capsys, "status", "--storage", f"sqlite:///{database}")
    assert "has a schema that Optuna" in said and "does not know" in said
    assert database.read_bytes() == before


@pytest.mark.parametrize("url, folder", [("sqlite:////proc/none/studies.db", "/proc/none"), ("sqlite:///new/studies.db", "new")])
def test_a_database_in_a_folder_that_does_not_exist(url, folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in (["run", "--quiet", "--space", TINY_SPACE, "--storage", url], ["copy", "--from", url, "--to", url]):
        said = one_line_error(capsys, *command)
        assert said.endswith(f"the folder {folder} does not exist: create it, or name another --storage") or "no database" in said
    assert list(tmp_path.iterdir()) == []


def test_weights_that_are_not_a_state_dict_are_refused_before_any_data(tmp_path, capsys):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"\x80\x04not a pickle at all")
    said = one_line_error(capsys, "run", "--quiet", "--space", "steel-masks", "--weights", bad, "--data", tmp_path / "nowhere")
    assert f"weights file {bad} could not be loaded into 'resnet18' (" in said  # the first encoder the space may pick
    assert "give a state dict of" in said
    said = one_line_error(capsys, "run", "--quiet", "--space", "checkbox", "--weights", bad, "--data", tmp_path / "nowhere")
    assert f"weights file {bad} could not be loaded into 'mobilenetv2_100'" in said


def test_a_damaged_checkpoint_is_said_and_its_trial_starts_again(tiny_images, tmp_path, capsys):
    from search.storage import Location
    from search.study.resume import checkpoint_id, retry

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    options = dict(space=str(TINY_SPACE), storage=storage, study="tiny", data=str(tiny_images), quiet=True)
    run(RunConfig(trials=1, **options))
    study = optuna.load_study(study_name="tiny", storage=Location(storage).open())
    trial = study.ask({"model": optuna.distributions.CategoricalDistribution(["baseline"]),
                       "lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # its worker died; a retry waits for it
    study.set_user_attr("trials_wanted", 2)
    retry(study, study.trials[-1])
    (tmp_path / "artifacts" / checkpoint_id("tiny", study.trials[-1])).write_bytes(b"PK\x03\x04 cut short")
    capsys.readouterr()
    run(RunConfig(trials=2, **options))
    said = capsys.readouterr()
    assert "trial 2 retries trial 1 from the start: its checkpoint is unreadable (" in said.out + said.err
    assert [t.state.name for t in optuna.load_study(study_name="tiny", storage=storage).trials] == ["COMPLETE", "FAIL", "COMPLETE"]


def test_the_readme_space_runs_as_written(tiny_images, tmp_path):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    path = tmp_path / "my_space.py"
    path.write_text(code)
    space = get_space(str(path))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    run(RunConfig(space=str(path), storage=storage, trials=1, epochs=1, data=str(tiny_images), quiet=True))
    assert optuna.load_study(study_name=space.name, storage=storage).trials[0].state.name == "COMPLETE"


def test_spaces_into_a_pipe_that_closes_early():
    import subprocess
    import sys
    from pathlib import Path

    lister = subprocess.Popen([Path(sys.executable).parent / "hpsearch", "spaces"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lister.stdout.readline()
    lister.stdout.close()  # as `| head -1` does
    assert lister.wait(timeout=600) == 0 and lister.stderr.read() == b""


def test_a_class_whose_every_image_is_unreadable_is_named(tiny_images, capsys):
    (tiny_images / "blank").mkdir()
    for n in range(6):
        (tiny_images / "blank" / f"{n}.png").write_bytes(b"not a png")
    Image.new("RGB", (4, 4)).save(tiny_images / "circle" / "extra.png")
    said = one_line_error(capsys, "run", "--quiet", "--space", TINY_SPACE, "--data", tiny_images)
    assert "every image of class 'blank' was left out (e.g. blank/0.png: not an image)" in said
