"""The options several commands share, each declared once (search.declare): where the study is, and the device.
Light on purpose: the command line is built from these before any command imports torch."""

from __future__ import annotations

from dataclasses import dataclass

from search.declare import Option, Options
from search.storage import DEFAULT_STORAGE, Location

STORING = "storage and artifacts"  # the group these are listed under in -h

STORAGE = Option("Optuna storage URL (default %(default)s)", group=STORING, shown="always", env="HPSEARCH_STORAGE")
STUDY = Option("study name (default: the only one)", group=STORING)
ARTIFACTS = Option("folder of the artifact store (default: artifacts/ beside the database)", group=STORING,
                   env="HPSEARCH_ARTIFACTS")
DEVICE = Option("cpu, cuda, cuda:N or auto (default: cuda when available)")
TRIAL = Option("the trial whose model (default: the best)")
PICK = Option('the trial a rule picks by its costs and metrics: "best ms<=2", "fastest f1_weighted>=0.95", '
              '"smallest accuracy>=0.9" (see `hpsearch front`)', metavar="RULE")


@dataclass(kw_only=True)
class StudyIn(Options):
    """The options of a command that looks at one study's trials."""

    storage: str = STORAGE.field(DEFAULT_STORAGE)
    study: str | None = STUDY.field(None)

    @property
    def location(self) -> Location:
        return Location(self.storage)


@dataclass(kw_only=True)
class OnStudy(StudyIn):
    """The options of a command that looks at one study, its files included."""

    artifacts: str | None = ARTIFACTS.field(None)

    @property
    def location(self) -> Location:
        return Location(self.storage, self.artifacts)
