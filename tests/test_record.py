"""What a study records about itself: a study made before the record was one module still reads, shows and
continues as it did (tests/data/study_made_before_the_record.sql, with the images it ran on)."""

import csv
import sqlite3
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE
from test_study import hpsearch

from search.record import BEST_METRICS, StudyRecord

DATA = Path(__file__).parent / "data"


@pytest.fixture
def old_study(tmp_path) -> str:
    with sqlite3.connect(tmp_path / "studies.db") as db:
        db.executescript((DATA / "study_made_before_the_record.sql").read_text())
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_a_study_made_before_the_record_reads_shows_and_continues(old_study, tmp_path, tiny_images):
    recorded = StudyRecord.read(optuna.load_study(study_name="tiny", storage=old_study))
    assert recorded.space == "tiny" and recorded.search == {"sampler": "tpe", "pruner": "patient"}
    assert (recorded.trials_wanted, recorded.epochs, recorded.keep, recorded.heartbeat) == (3, 2, 2, 30)
    data = recorded.data
    assert (data.images, data.class_names, data.split, data.seed, data.crop) == (36, ["circle", "square", "stripe"], (0.6, 0.2, 0.2), 0, None)
    assert data.splits_artifact and recorded.best_evaluation["trial"] == 0

    assert "3 complete" in hpsearch("status", cwd=tmp_path).stdout
    assert hpsearch("best", cwd=tmp_path).stdout.startswith("study 'tiny': best trial 0, value 1.0000")
    hpsearch("export", "--csv", tmp_path / "trials.csv", cwd=tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert [float(r["best_valid_f1_weighted"]) for r in rows] == [float(r["value"]) for r in rows]  # from each epoch's history
    assert all(datetime.fromisoformat(r["started"]).tzinfo is not None for r in rows)  # with its time zone

    run = ["run", "--space", TINY_SPACE, "--epochs", 2, "--keep", 2, "--quiet", "--trials"]
    (tiny_images / "circle" / "circle1.PNG").unlink()
    refused = hpsearch(*run, 4, "--data", tiny_images, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "was run on other images than" in refused.stderr and "(36 files then, 35 now)" in refused.stderr
    hpsearch(*run, 4, "--data", DATA / "old_study_images", cwd=tmp_path)  # the same images, at another path
    trials = optuna.load_study(study_name="tiny", storage=old_study).trials
    assert len(trials) == 4 and BEST_METRICS in trials[3].user_attrs and BEST_METRICS not in trials[0].user_attrs
    assert StudyRecord.read(optuna.load_study(study_name="tiny", storage=old_study)).data == data  # recorded once, kept
