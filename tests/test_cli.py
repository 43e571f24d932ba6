import subprocess
import sys
from pathlib import Path

import pytest

from search.cli import COMMANDS, main, parser
from search.declare import described

HPSEARCH = Path(sys.executable).parent / "hpsearch"


@pytest.mark.parametrize(
    "command, flags",
    [
        ("run", ["--space", "--trials", "--data", "--epochs", "--storage", "--study", "--device", "--weights"]),
        ("spaces", []),
        ("best", ["--storage", "--study", "--artifacts"]),
        ("status", ["--storage", "--study", "--trials"]),
        ("export", ["--storage", "--study", "--csv"]),
        ("report", ["--storage", "--study", "--out", "--artifacts"]),
        ("dashboard", ["--storage", "--host", "--port", "--artifacts"]),
        ("cascade", ["--out", "--storage", "--studies", "--artifacts", "--device"]),
    ],
)
def test_help_explains_each_flag(command, flags):
    out = subprocess.run([HPSEARCH, command, "-h"], capture_output=True, text=True, check=True).stdout
    for flag in flags:
        line = next(line for line in out.splitlines() if line.strip().startswith(flag))
        assert len(line.split(maxsplit=2)) >= 2, f"{flag} has no explanation"


def test_spaces_lists_each_space_with_its_task_and_search():
    out = subprocess.run([HPSEARCH, "spaces"], capture_output=True, text=True, check=True).stdout
    assert "checkbox" in out and "classify" in out
    assert "batch_size: 8 | 32 | 64" in out and "lr: 1e-05 .. 0.01 (log)" in out
    assert "--data: a folder of class folders, or a CSV manifest" in out and "region (0.12, 0.0, 0.88, 1.0)" in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_explains_itself_and_each_of_its_flags(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "-h"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith(f"usage: hpsearch {command}")
    words = " ".join(out.split())
    assert COMMANDS[command][1] in words  # what it does, as the table says
    for name, help in described(COMMANDS[command][2]):
        assert any(line.strip().startswith(name) for line in out.splitlines()), f"{command} lists no {name}"
        assert " ".join(help.split()[:6]) in words, f"{command} {name} is not explained"


def test_a_count_below_one_is_refused_where_the_flag_is_declared(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--space", "digits", "--jobs", "0"])
    assert done.value.code == 2 and "argument --jobs: must be at least 1, not 0" in capsys.readouterr().err


def test_a_bad_flag_value_is_one_line_pointing_at_the_commands_help(tmp_path):
    refused = subprocess.run([HPSEARCH, "run", "--space", "digits", "--max-ms", "-3"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        "hpsearch: error: argument --max-ms: must be above 0, not -3: see `hpsearch run -h`"]
    assert not list(tmp_path.iterdir())


def test_a_bug_shows_its_traceback_exit_code_1_and_says_it_is_ours_while_bad_input_stays_one_line(monkeypatch, capsys):
    import search.review.report as report

    def broken():  # as numpy would fail deep inside a command
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(report, "spaces_table", broken)
    assert main(["spaces"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "Traceback (most recent call last):" and "in broken" in "\n".join(err)
    assert err[-2] == "ValueError: operands could not be broadcast together with shapes (3,) (4,)"
    assert err[-1].startswith("hpsearch: this is a bug in hpsearch 0.1.0, not a mistake of yours: please report it")
    assert err[-1].endswith("the command: hpsearch spaces")

    assert main(["status", "--storage", "not a url"]) == 2  # bad input: one line, as before
    assert capsys.readouterr().err.splitlines() == [
        "hpsearch: error: that storage is not a URL SQLAlchemy can read: give one such as sqlite:///studies.db, "
        "postgresql://USER@HOST/DATABASE or journal:///FILE"]


def test_the_storage_and_the_artifact_folder_come_from_the_environment_where_no_flag_gives_them(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    monkeypatch.setenv("HPSEARCH_ARTIFACTS", str(tmp_path / "kept"))
    assert main(["status"]) == 2
    assert f"no database at {tmp_path / 'elsewhere.db'}" in capsys.readouterr().err
    assert main(["status", "--storage", f"sqlite:///{tmp_path / 'given.db'}"]) == 2  # a flag wins
    assert f"no database at {tmp_path / 'given.db'}" in capsys.readouterr().err
    assert parser().parse_args(["export"]).artifacts == str(tmp_path / "kept")
