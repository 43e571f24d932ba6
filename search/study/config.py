"""`hpsearch run`'s options, each declared once (search.declare), grouped by concern: the command line is built
from them, the study's note runs the study again with them (`command`), and its `--jobs` workers get every
one of them by construction: the options themselves, as JSON in their environment (`for_worker`).

A new run option is a field here, in its group, and the code that acts on it (a `Run` carries the config
through the study loop: search.study.setup)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from search.declare import Option, Options, above, at_least, command_line, duration, gpu_numbers, option
from search.options import ARTIFACTS, DEVICE, STORAGE, STORING, STUDY
from search.storage import DEFAULT_STORAGE, STORAGE_WAIT, Location
from search.study.registry import list_pruners, list_samplers
from trainers.costs import BY_NAME, LATENCY, LIMITED

WORKER_OPTIONS = "HPSEARCH_WORKER_OPTIONS"  # a --jobs worker's options, as JSON (RunConfig.for_worker)

DATA = "data and split"
SEARCH = "what is searched and how"
KNOWN = "building on earlier studies"
WORKERS = "workers, devices and faults"


def _limits() -> dict[str, Option]:
    """--max-NAME for each cost a run can limit (trainers.costs.LIMITED)."""
    return {kind.name: Option(f"at most this many {kind.words}: a configuration over any --max-* limit is recorded "
                              f"infeasible, not trained", flag=f"--max-{kind.name}", metavar=kind.limit,
                              parse=int if kind.whole else float, check=above(0)) for kind in LIMITED}


@dataclass(kw_only=True)
class RunConfig(Options):
    """The options of `hpsearch run`. The fields are in the order the study's note writes them (search.declare's
    command_line); `-h` lists them by their groups, in the order of GROUPS."""

    GROUPS: ClassVar[tuple[str, ...]] = (DATA, SEARCH, KNOWN, STORING, WORKERS)

    space: str = option("a space name (see `hpsearch spaces`) or a .py file that registers one", group=DATA, shown="always")
    storage: str = STORAGE.field(DEFAULT_STORAGE)
    study: str | None = STUDY.field(None, help="study name (default: the space's name)")
    trials: int = option("finished trials the study should have in total (default %(default)s)", 50, group=SEARCH,
                         check=at_least(1), shown="always")
    data: str | None = option("a folder of class folders, or a CSV manifest path,label[,split] (default: the space's data)",
                              None, group=DATA)
    epochs: int | None = option("epochs per trial, overriding the space's (for quick runs)", None, group=DATA, check=at_least(1))
    device: str = DEVICE.field("auto", group=WORKERS)
    seed: int = option("seed of the split, the sampler and training (default %(default)s)", 0, group=DATA, shown="always")
    pretrained: bool | None = option("start timm models from ImageNet weights", None, group=DATA)
    weights: str | None = option("a weights file, or a folder of <model>.safetensors files; implies --pretrained", None,
                                 group=DATA)
    artifacts: str | None = ARTIFACTS.field(None)
    quiet: bool = option("no progress bars (a log never gets them: one line per trial)", False, group=WORKERS, shown="never")
    new_study: str | None = option("start a new study of this name (refused if it exists)", None, group=STORING,
                                   metavar="NAME", shown="never")
    heartbeat: int = option("seconds between a running trial's signs of life; a trial silent for 3 of them is failed and "
                            "retried from its last epoch (default %(default)s)", 30, group=WORKERS, check=at_least(1))
    storage_wait: float = option("how long a worker waits for a database that went away before it stops with exit code 3 "
                                 "(default %(default)s); the same command then continues the study", STORAGE_WAIT,
                                 group=WORKERS, metavar="SECONDS", check=at_least(1))
    keep: int = option("keep the weights of the K best trials, removing those of a trial that falls out of them (default "
                       "%(default)s); their pictures and notes stay", 5, group=STORING, metavar="K", check=at_least(1))
    checkpoint_every: float = option("write a trial's epoch checkpoint after at least this much training since the last "
                                     "one (default %(default)s; 0: after every epoch): a crash costs at most this much work",
                                     30, group=WORKERS, metavar="SECONDS", check=at_least(0))
    timeout: float | None = option("the run's wall-time budget, for all its workers (90s, 20m, 2h): no trial starts after "
                                   "it, and one still training stops at the end of its epoch (recorded pruned, `time "
                                   "budget`, its best epoch its value); with --trials, whichever comes first", None,
                                   group=SEARCH, metavar="DURATION", parse=duration, check=above(0))
    sampler: str | None = option("how trials are drawn: tpe-per-second (the spaces' default) weighs what a configuration "
                                 "promises against the seconds it is expected to take, tpe what it promises alone (default: "
                                 "the space's; a resumed study keeps its own)", None, group=SEARCH, choices=list_samplers)
    pruner: str | None = option("how hopeless trials are stopped (default: the space's; a resumed study keeps its own)", None,
                                group=SEARCH, choices=list_pruners)
    jobs: int = option("worker processes on this machine, sharing the study (default %(default)s); on a GPU machine "
                       "spread over its GPUs, round-robin", 1, group=WORKERS, check=at_least(1))
    gpus: list[int] | None = option("the GPUs the --jobs workers are spread over (default: every visible one; refused "
                                    "without CUDA)", None, group=WORKERS, metavar="0,2,3", parse=gpu_numbers)
    cost_device: str | None = option("where each model's latency and throughput are measured (default: where it trains)",
                                     None, group=SEARCH, choices=["cpu", "cuda"])
    limits: dict[str, float] = option("the costs a model may have at most", {}, group=SEARCH, each=_limits)
    objectives: str | None = option(
        f"several objectives, the space's metric first, then costs ({', '.join(BY_NAME)}) or valid metrics: --objectives "
        f"f1_weighted,{LATENCY} searches with multi-objective TPE, without pruning; see the front with `hpsearch front`",
        None, group=SEARCH, metavar="NAMES")
    enqueue: str | None = option("parameter sets to run first, each once: a CSV (one `hpsearch export --csv` wrote, or a "
                                 "column per parameter) or JSON list of them, or a study whose --enqueue-top best ones",
                                 None, group=KNOWN, metavar="FILE|STUDY")
    enqueue_top: int = option("--enqueue STUDY: its K best parameter sets (default %(default)s)", 5, group=KNOWN, metavar="K",
                              check=at_least(1))
    learn_from: str | None = option("a study of the same space whose finished trials this study's sampler starts from, "
                                    "without training them again; imported, never counted as this study's trials nor "
                                    "chosen as its best", None, group=KNOWN, metavar="STUDY")
    from_model: str | None = option("every trial starts from that study's best model (or trial TRIAL's, one with kept "
                                    "weights), with its architecture and image preparation, on the same images; the "
                                    "space's fine-tuning search chooses the rest", None, group=KNOWN, flag="--from",
                                    metavar="STUDY[:TRIAL]")
    from_storage: str | None = option("the storage of the studies --from, --enqueue and --learn-from name (default: "
                                      "--storage)", None, group=KNOWN, metavar="URL")
    no_default_first: bool = option("a new study does not run the space's default configuration first (`hpsearch spaces` "
                                    "shows it)", False, group=KNOWN)

    worker: int = field(default=0)  # > 0: a --jobs worker, which only searches (not a flag: `run` starts them)
    deadline: float | None = field(default=None)  # the --timeout's end, as time.time(), set once by `run` for its workers

    def __post_init__(self):
        super().__post_init__()
        if self.weights and self.pretrained is None:
            self.pretrained = True

    @property
    def study_name(self) -> str:
        """The study it runs: --new-study's, else --study's, else the space's name (where the space is named
        by a file, the name the file gives it, which only loading it tells: search.study.setup)."""
        return self.new_study or self.study or self.space

    @property
    def location(self) -> Location:
        return Location(self.storage, self.artifacts)

    @property
    def others(self) -> Location:
        """Where the studies --from, --enqueue and --learn-from name live."""
        return Location(self.from_storage) if self.from_storage else self.location

    def command(self) -> list[str]:
        """The command line that runs this study again, password left out: every option not at its default."""
        again = replace(self, storage=self.location.bare, study=self.study_name, new_study=None)
        return ["hpsearch", "run", *command_line(again)]

    def for_worker(self, number: int) -> dict:
        """What worker `number` of --jobs gets: these options, as the same run's worker, quiet, on the same study
        (never a new one) and the storage without its password (that comes in the environment)."""
        options = replace(self, worker=number, quiet=True, study=self.study_name, new_study=None, storage=self.location.bare)
        return {f.name: getattr(options, f.name) for f in fields(options)}

    @classmethod
    def from_worker(cls, text: str) -> RunConfig:
        return cls(**json.loads(text))
