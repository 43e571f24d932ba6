"""Pictures of the best and worst test predictions for boxes: a real tiny localize study, its picture shown by
the real optuna-dashboard in headless Chromium. (Masks and label sets: the steel studies of test_cascade.)"""

import io

import optuna
from browser import chromium, dashboard
from optuna.artifacts import get_all_artifact_meta
from PIL import Image
from test_review import shows
from test_study import hpsearch

from search.review.pictures import BEST_AND_WORST
from search.storage import Location
from trainers.datasets.localize import render_localize

LOCALIZE_SPACE = '''
from spaces import Space, register


def suggest(trial) -> dict:
    return {"model": "baseline", "batch_size": 16, "lr": trial.suggest_float("lr", 1e-3, 3e-3, log=True)}


register(Space(name="boxes", task="localize", data="builtin:localize/manifest.csv", suggest=suggest, summary="tests",
               image_size=32, resize="letterbox", epochs=1, metric="hit_rate"))
'''


def expected_size(side: int, panels: int) -> tuple[int, int]:
    """The mosaic's figure in pixels: BEST_AND_WORST cells of `panels` images of `side` pixels, two rows."""
    cell, row = side * panels + 4, side + max(8, side // 3)
    return round(100 * max(4.0, BEST_AND_WORST * cell / 40 + 1.2)), round(100 * (2 * row / 40 + 0.9))


def pictures_of(storage: str, study: str, name: str) -> list[Image.Image]:
    """The PNG artifacts called `name` of the study's trials, opened."""
    opened = Location(storage).open()
    store = Location(storage).artifact_store(create=False)
    found = []
    for trial in optuna.load_study(study_name=study, storage=opened).trials:
        for meta in get_all_artifact_meta(trial, storage=opened):
            if meta.filename == name:
                with store.open_reader(meta.artifact_id) as reader:
                    found.append(Image.open(io.BytesIO(reader.read())))
    return found


def test_a_localize_trial_draws_its_best_and_worst_boxes_and_the_dashboard_shows_them(tmp_path):
    render_localize(tmp_path / "shapes")
    (tmp_path / "boxes.py").write_text(LOCALIZE_SPACE)
    hpsearch("run", "--space", tmp_path / "boxes.py", "--data", tmp_path / "shapes" / "manifest.csv", "--trials", 1,
             "--quiet", cwd=tmp_path)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    (picture,) = pictures_of(storage, "boxes", "boxes_test.png")
    assert picture.format == "PNG" and picture.size == expected_size(32, 1)
    assert not pictures_of(storage, "boxes", "boxes_valid.png")  # the test split's, of the best trial only

    with dashboard(storage, tmp_path, tmp_path / "dashboard.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/dashboard/studies/1/trials")
        shows(page, "boxes_test.png")
        page.wait_for_function("[...document.images].filter(i => i.src.includes('/artifacts/')).every(i => i.naturalWidth > 0)")
        shown = page.eval_on_selector_all("img[src*='/artifacts/']", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert list(expected_size(32, 1)) in shown, shown
