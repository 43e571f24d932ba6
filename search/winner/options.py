"""The options of the commands that use a study's models (predict, evaluate, export, serve, cascade), each declared
once (search.declare). Light on purpose: the command line is built from them before any command imports torch."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from search.declare import Option, Options, above, at_least, option
from search.guard import Listening
from search.options import ARTIFACTS, DEVICE, PICK, STORAGE, TRIAL, OnStudy
from search.storage import DEFAULT_STORAGE

CASCADE = ("steel-defect", "steel-types", "steel-masks")  # hpsearch cascade's default studies

ENSEMBLE = Option("average the K best trials' answers (default %(default)s)", metavar="K", check=at_least(1))
IMAGES = Option("image files, or folders of them", positional=True)
PREDICTIONS = Option("the CSV file to write (default %(default)s)")
DATA_MOVED = Option("the study's images, where they moved")
STUDIES = Option("the defect, types and masks studies, comma-separated (default %(default)s)")


@dataclass(kw_only=True)
class ModelChoice(OnStudy):
    """Which of a study's trials a command uses: the best, the K best ensembled, a trial by number, or the one a
    --pick rule chooses (search.winner.models)."""

    ensemble: int | None = ENSEMBLE.field(1)
    trial: int | None = TRIAL.field(None)
    pick: str | None = PICK.field(None)
    device: str = DEVICE.field("auto")


@dataclass(kw_only=True)
class PredictOptions(ModelChoice):
    images: list[str] = IMAGES.field()
    out: str = PREDICTIONS.field("predictions.csv")


@dataclass(kw_only=True)
class EvaluateOptions(ModelChoice):
    ensemble: int | None = ENSEMBLE.field(None, help="average the K best trials (default 5); or one trial's table with "
                                                     "--trial or --pick")
    data: str | None = DATA_MOVED.field(None)


@dataclass(kw_only=True)
class ExportOptions(OnStudy):
    csv: str | None = option("the CSV file to write, a row per trial", None)
    format: str | None = option("export a trained model in this format (exported: torch.export's .pt2)", None,
                                choices=("onnx", "torchscript", "exported"))
    out: str | None = option("with --format: the folder to write the model and its model.json into", None)
    trial: int | None = TRIAL.field(None, help="with --format: the trial whose model (default: the best)")
    pick: str | None = PICK.field(None)
    data: str | None = DATA_MOVED.field(None, help="with --format: the study's images, where they moved (checked on its "
                                                   "test split)")

    @property
    def choice(self) -> ModelChoice:
        """The model it exports, on the CPU."""
        return ModelChoice(storage=self.storage, study=self.study, artifacts=self.artifacts, trial=self.trial, pick=self.pick,
                           device="cpu")


@dataclass(kw_only=True)
class RequestLimits(Options):
    """What a served request may be, checked before it is read (search.winner.serve)."""

    max_bytes: int = option("the largest request body, in bytes (default 10 MB)", 10_000_000, check=at_least(1))
    max_files: int = option("the most images in one request (default %(default)s)", 32, check=at_least(1))
    # PIL's own cap, read from each image's header before it is decoded
    max_pixels: int = option("the most pixels in one image (default PIL's 89,478,485)", int(Image.MAX_IMAGE_PIXELS),
                             check=at_least(1))
    max_request_pixels: int = option("the most pixels of one request's images together (default 100,000,000); the images "
                                     "past it are refused", 100_000_000, check=at_least(1))
    read_seconds: float = option("the time a client has to send its request's body, else 408 (default 30)", 30.0,
                                 metavar="SECONDS", check=above(0))


@dataclass(kw_only=True)
class ServeOptions(RequestLimits, Listening, ModelChoice):
    cascade: bool = option("serve the steel cascade of three studies (see --studies)", False)
    studies: str = STUDIES.field(",".join(CASCADE), help="with --cascade: the defect, types and masks studies (default "
                                                        "%(default)s)")
    port: int = option("port to listen on (default %(default)s)", 8000)


@dataclass(kw_only=True)
class CascadeOptions(Options):
    images: list[str] = IMAGES.field()
    out: str = PREDICTIONS.field("predictions.csv")
    storage: str = STORAGE.field(DEFAULT_STORAGE)
    studies: str = STUDIES.field(",".join(CASCADE))
    artifacts: str | None = ARTIFACTS.field(None)
    device: str = DEVICE.field("auto")
    truth: str | None = option("Severstal's CSV of the true masks: also print the predictions' Dice against it", None)


def names(studies: str) -> list[str]:
    """`--studies a,b,c` as names."""
    return [name.strip() for name in studies.split(",")]
