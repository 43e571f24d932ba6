"""hpsearch's command line: a table of small typed command functions (COMMANDS), each handing its flags, by
name, to one function of search/. The flags several commands share are declared once, with their checks.

Commands import what they need when they run: torch and timm take seconds to import, and `hpsearch -h`
should not wait for them.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from search.errors import exit_code
from trainers.errors import InputError
from search.storage import DEFAULT_STORAGE, STORAGE_WAIT, Location, load_study
from search.study.keep import KEEP
from search.study.known import ENQUEUE_TOP
from search.study.registry import list_pruners, list_samplers
from search.study.resume import CHECKPOINT_EVERY, HEARTBEAT
from trainers.errors import InputError

STUDIES = ("steel-defect", "steel-types", "steel-masks")  # hpsearch cascade's default studies

# Before torch starts: OpenMP's threads sleep while they wait instead of spinning. Spinning, a trial beside
# another process's busy threads took over 6 times its time alone; sleeping, under 2 times. Alone, the
# two differ by no more than runs of one of them (benchmarks/shared_cpu.py, figures in the README's
# "Measured"). Set it otherwise to have it otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def at_least(kind: type, low: float, words: str) -> Callable[[str], int | float]:
    """A flag's type that refuses numbers below `low` (or, with low 0, at 0 too): argparse then says which
    flag, in one line, exit code 2."""

    def parse(text: str):
        value = kind(text)
        if not (value > 0 if low == 0 else value >= low):
            raise argparse.ArgumentTypeError(f"must be {words}, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its other errors ("invalid int value")
    return parse


def at_least_one(kind: type) -> Callable[[str], int | float]:
    return at_least(kind, 1, "at least 1")


def positive(kind: type) -> Callable[[str], int | float]:
    return at_least(kind, 0, "above 0")


def gpu_list(text: str) -> list[int]:
    """--gpus 0,2,3: distinct GPU numbers, as CUDA numbers the GPUs this process sees."""
    try:
        gpus = [int(g) for g in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"GPU numbers separated by commas (0,2,3), not {text}") from None
    if min(gpus) < 0 or len(set(gpus)) < len(gpus):
        raise argparse.ArgumentTypeError(f"distinct GPU numbers from 0, not {text}")
    return gpus


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    options: dict = field(default_factory=dict)

    def but(self, **options) -> Flag:
        """The same flag with other options (its help, its default)."""
        return Flag(self.names, {**self.options, **options})


def flag(*names: str, **options) -> Flag:
    return Flag(names, options)


STORAGE = flag("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
STUDY = flag("--study", help="study name (default: the only one)")
ARTIFACTS = flag("--artifacts", help="folder of the artifact store (default: artifacts/ beside the database)")
DEVICE = flag("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
IMAGES = flag("images", nargs="+", help="image files, or folders of them")
PREDICTIONS = flag("--out", default="predictions.csv", help="the CSV file to write (default predictions.csv)")
ENSEMBLE = flag("--ensemble", type=at_least_one(int), default=1, metavar="K", help="average the K best trials' answers (default 1)")
DATA_MOVED = flag("--data", help="the study's images, where they moved")
STUDIES_FLAG = flag("--studies", default=",".join(STUDIES),
                    help=f"the defect, types and masks studies, comma-separated (default {','.join(STUDIES)})")
HOST = flag("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 or :: "
                                                 "every address, with a warning)")
ALLOW_HOST = flag("--allow-host", action="append", default=[], metavar="NAME",
                  help="a further name requests may call this server by (a Kubernetes Service's, a proxy's), with any "
                       "port; repeatable. Every other Host and Origin is refused")
ON_A_STUDY = [STORAGE, STUDY, ARTIFACTS]  # the flags of a command that looks at one study
TRIAL = flag("--trial", type=int, help="the trial whose model (default: the best)")
PICK = flag("--pick", metavar="RULE", help='the trial a rule picks by its costs and metrics: "best ms<=2", "fastest '
                                           'f1_weighted>=0.95", "smallest accuracy>=0.9" (see `hpsearch front`)')

RUN = [
    flag("--space", required=True, help="a space name (see `hpsearch spaces`) or a .py file that registers one"),
    flag("--trials", type=at_least_one(int), default=50, help="finished trials the study should have in total (default 50)"),
    flag("--data", help="a folder of class folders, or a CSV manifest path,label[,split] (default: the space's data)"),
    flag("--epochs", type=at_least_one(int), help="epochs per trial, overriding the space's (for quick runs)"),
    DEVICE,
    flag("--seed", type=int, default=0, help="seed of the split, the sampler and training (default 0)"),
    flag("--pretrained", action="store_true", default=None, help="start timm models from ImageNet weights"),
    flag("--weights", help="a weights file, or a folder of <model>.safetensors files; implies --pretrained"),
    STORAGE, STUDY.but(help="study name (default: the space's name)"), ARTIFACTS,
    flag("--quiet", action="store_true", help="no progress bars (a log never gets them: one line per trial)"),
    flag("--new-study", metavar="NAME", help="start a new study of this name (refused if it exists)"),
    flag("--jobs", type=at_least_one(int), default=1, help="worker processes on this machine, sharing the study (default 1); "
                                                          "on a GPU machine spread over its GPUs, round-robin"),
    flag("--gpus", type=gpu_list, metavar="0,2,3", help="the GPUs the --jobs workers are spread over (default: every "
                                                        "visible one; refused without CUDA)"),
    flag("--cost-device", choices=["cpu", "cuda"], help="where each model's latency and throughput are measured "
                                                         "(default: where it trains)"),
    flag("--max-ms", type=positive(float), metavar="MS", help="milliseconds per image at batch 1, at most: a configuration "
                                                                  "over any --max-* limit is recorded infeasible, not trained"),
    flag("--max-params", type=positive(int), metavar="N", help="parameters, at most"),
    flag("--max-mb", type=positive(float), metavar="MB", help="weights on disk in MB, at most"),
    flag("--objectives", metavar="NAMES", help="several objectives, the space's metric first, then costs (ms, throughput, "
                                               "params, mb, flops) or valid metrics: --objectives f1_weighted,ms searches "
                                               "with multi-objective TPE, without pruning; see the front with `hpsearch front`"),
    flag("--enqueue", metavar="FILE|STUDY", help="parameter sets to run first, each once: a CSV (one `hpsearch export --csv` "
                                                 "wrote, or a column per parameter) or JSON list of them, or a study whose "
                                                 "--enqueue-top best ones"),
    flag("--enqueue-top", type=at_least_one(int), default=ENQUEUE_TOP, metavar="K",
         help=f"--enqueue STUDY: its K best parameter sets (default {ENQUEUE_TOP})"),
    flag("--learn-from", metavar="STUDY", help="a study of the same space whose finished trials this study's sampler starts "
                                                "from, without training them again; imported, never counted as this "
                                                "study's trials nor chosen as its best"),
    flag("--from", dest="from_model", metavar="STUDY[:TRIAL]",
         help="every trial starts from that study's best model (or trial TRIAL's, one with kept weights), with its "
              "architecture and image preparation, on the same images; the space's fine-tuning search chooses the rest"),
    flag("--from-storage", metavar="URL", help="the storage of the studies --from, --enqueue and --learn-from name "
                                               "(default: --storage)"),
    flag("--no-default-first", action="store_true", help="a new study does not run the space's default configuration "
                                                         "first (`hpsearch spaces` shows it)"),
    flag("--heartbeat", type=at_least_one(int), default=HEARTBEAT,
         help=f"seconds between a running trial's signs of life; a trial silent for 3 of them is failed and retried "
              f"from its last epoch (default {HEARTBEAT})"),
    flag("--sampler", choices=list_samplers(), help="how trials are drawn (default: the space's; a resumed study keeps its own)"),
    flag("--pruner", choices=list_pruners(), help="how hopeless trials are stopped (default: the space's; a resumed study "
                                                  "keeps its own)"),
    flag("--keep", type=at_least_one(int), default=KEEP, metavar="K",
         help=f"keep the weights of the K best trials, removing those of a trial that falls out of them (default {KEEP}); "
              f"their pictures and notes stay"),
    flag("--checkpoint-every", type=float, default=CHECKPOINT_EVERY, metavar="SECONDS",
         help=f"write a trial's epoch checkpoint after at least this much training since the last one (default "
              f"{CHECKPOINT_EVERY}; 0: after every epoch): a crash costs at most this much work"),
    flag("--storage-wait", type=at_least_one(float), default=STORAGE_WAIT, metavar="SECONDS",
         help=f"how long a worker waits for a database that went away before it stops with exit code 3 (default "
              f"{STORAGE_WAIT}); the same command then continues the study"),
]


def run(space: str, study: str | None, new_study: str | None, quiet: bool, **options) -> None:
    from search.study.options import RunOptions
    from search.study.run import run
    from spaces import get_space

    chosen = get_space(space)
    run(RunOptions(space=chosen, space_arg=space, study_name=new_study or study or chosen.name, new_study=new_study is not None,
                   progress=not quiet, **options))


def worker() -> None:
    """A --jobs worker: the options of the run that started it come in its environment."""
    import os

    from search.study.options import WORKER_OPTIONS, RunOptions
    from search.study.run import run

    run(RunOptions.from_worker(os.environ[WORKER_OPTIONS]))


def spaces() -> None:
    from search.review.report import spaces_table

    print(spaces_table())


def _study(storage: str, study: str | None, artifacts: str | None = None, need_complete: bool = True):
    """The storage location, the storage (opened once) and the study a command looks at."""
    where = Location(storage, artifacts)
    where.require_database()
    opened = where.open()
    return where, opened, load_study(where, study, need_complete, storage=opened)


def best(storage: str, study: str | None, artifacts: str | None, out: str | None) -> None:
    from search.review.report import best_summary

    where, opened, chosen = _study(storage, study, artifacts)
    print(best_summary(chosen, opened, where, Path(out) if out else None))


def status(storage: str, study: str | None, trials: int | None) -> None:
    from search.review.report import status_summary

    print(status_summary(_study(storage, study, need_complete=False)[2], trials))


def front(storage: str, study: str | None) -> None:
    from search.review.front import front_table, metric_name

    chosen = _study(storage, study, need_complete=False)[2]
    print(front_table(chosen, metric_name(chosen)))


def export(storage: str, study: str | None, artifacts: str | None, csv: str | None, format: str | None, out: str | None,
           trial: int | None, pick: str | None, data: str | None) -> None:
    if csv:
        from search.review.report import export_csv

        print(export_csv(_study(storage, study)[2], Path(csv)))
    elif format and out:
        from search.winner.export import export

        print(export(Location(storage, artifacts), study, trial, format, Path(out), data, pick))
    else:
        raise InputError("say what to export: --csv FILE (every trial), or --format onnx|torchscript|exported --out DIR (a model)")


def predict(images: list[str], storage: str, study: str | None, artifacts: str | None, out: str, ensemble: int,
            trial: int | None, pick: str | None, device: str) -> None:
    from search.winner.predict import run_predict

    print(run_predict(Location(storage, artifacts), study, images, Path(out), ensemble, device, trial, pick))


def evaluate(storage: str, study: str | None, artifacts: str | None, ensemble: int | None, trial: int | None, pick: str | None,
             data: str | None, device: str) -> None:
    from search.winner.evaluate import run_evaluate

    print(run_evaluate(Location(storage, artifacts), study, ensemble, device, data, trial, pick))


def serve(storage: str, study: str | None, artifacts: str | None, ensemble: int, trial: int | None, pick: str | None,
          cascade: bool, studies: str, host: str, allow_host: list[str], port: int, max_bytes: int, max_files: int,
          max_pixels: int, max_request_pixels: int, read_seconds: float, device: str) -> None:
    from search.winner.serve import Limits, run_serve

    run_serve(Location(storage, artifacts), study, ensemble, _names(studies) if cascade else None, host, port,
              Limits(max_bytes, max_files, max_pixels, max_request_pixels, read_seconds), device, allow_host, trial, pick)


def report(storage: str, study: str | None, artifacts: str | None, out: str) -> None:
    from search.review.report_page import write_report

    where, opened, chosen = _study(storage, study, artifacts, need_complete=False)
    page = write_report(chosen, opened, where.artifact_store(), Path(out))
    print(f"wrote {page}: open it in a browser, no server needed")


def dashboard(storage: str, host: str, allow_host: list[str], port: int, artifacts: str | None) -> None:
    from search.review.dashboard import run_dashboard

    run_dashboard(Location(storage, artifacts), host, port, allow_host)


def cascade(images: list[str], out: str, storage: str, studies: str, artifacts: str | None, device: str, truth: str | None) -> None:
    from search.winner.cascade import run_cascade

    print(run_cascade(Location(storage, artifacts), _names(studies), images, Path(out), device, Path(truth) if truth else None))


def copy(from_url: str, to_url: str, study: str | None, from_artifacts: str | None, to_artifacts: str | None) -> None:
    from search.study.copy import copy_study

    print(copy_study(Location(from_url, from_artifacts), Location(to_url, to_artifacts), study))


def _names(studies: str) -> list[str]:
    return [name.strip() for name in studies.split(",")]


# name: (function, what it does, its flags); each flag's name is the function's parameter of that name
COMMANDS: dict[str, tuple[Callable[..., None], str, list[Flag]]] = {
    "run": (run, "run a search until the study has --trials finished trials", RUN),
    "spaces": (spaces, "list the search spaces", []),
    "best": (best, "show the best trial's parameters, metrics and model files", ON_A_STUDY + [
        flag("--out", help="copy the best trial's files into this folder under their own names (model.safetensors, ...)")]),
    "status": (status, "trials by state, the best so far, trials per hour, time left", [
        STORAGE, STUDY, flag("--trials", type=at_least_one(int), help="the finished trials wanted (default: what the last run asked for)")]),
    "front": (front, "the trials no other trial beats on the metric, latency and size at once", [STORAGE, STUDY]),
    "export": (export, "write every trial to a CSV file, or a trial's model as ONNX, TorchScript or torch.export's program", ON_A_STUDY + [
        flag("--csv", help="the CSV file to write, a row per trial"),
        flag("--format", choices=("onnx", "torchscript", "exported"),
             help="export a trained model in this format (exported: torch.export's .pt2)"),
        flag("--out", help="with --format: the folder to write the model and its model.json into"),
        TRIAL.but(help="with --format: the trial whose model (default: the best)"), PICK,
        DATA_MOVED.but(help="with --format: the study's images, where they moved (checked on its test split)")]),
    "predict": (predict, "predict image files with the best model, or the average of the K best", ON_A_STUDY + [
        IMAGES, PREDICTIONS, ENSEMBLE, TRIAL, PICK, DEVICE]),
    "evaluate": (evaluate, "the train/valid/test table of the K best trials' ensemble beside the best trial's, or of one "
                           "trial", ON_A_STUDY + [
        ENSEMBLE.but(default=None, help="average the K best trials (default 5); or one trial's table with --trial or --pick"),
        TRIAL, PICK, DATA_MOVED, DEVICE]),
    "serve": (serve, "serve the best model (or the K best, or the steel cascade) over REST", ON_A_STUDY + [
        ENSEMBLE, TRIAL, PICK, flag("--cascade", action="store_true", help="serve the steel cascade of three studies (see --studies)"),
        STUDIES_FLAG.but(help=f"with --cascade: the defect, types and masks studies (default {','.join(STUDIES)})"), HOST,
        ALLOW_HOST,
        flag("--port", type=int, default=8000, help="port to listen on (default 8000)"),
        flag("--max-bytes", type=at_least_one(int), default=10_000_000, help="the largest request body, in bytes (default 10 MB)"),
        flag("--max-files", type=at_least_one(int), default=32, help="the most images in one request (default 32)"),
        flag("--max-pixels", type=at_least_one(int), default=89_478_485, help="the most pixels in one image (default PIL's 89,478,485)"),
        flag("--max-request-pixels", type=at_least_one(int), default=100_000_000,
             help="the most pixels of one request's images together (default 100,000,000); the images past it are refused"),
        flag("--read-seconds", type=positive(float), default=30.0, metavar="SECONDS",
             help="the time a client has to send its request's body, else 408 (default 30)"),
        DEVICE]),
    "report": (report, "write a self-contained HTML page about a study", ON_A_STUDY + [
        flag("--out", required=True, help="folder to write index.html into")]),
    "dashboard": (dashboard, "serve optuna-dashboard on the storage, with the artifacts", [
        STORAGE, HOST, ALLOW_HOST, flag("--port", type=int, default=8080, help="port to listen on (default 8080)"), ARTIFACTS]),
    "cascade": (cascade, "find defects with the best models of three steel studies (is there a defect? which types? "
                         "where?), written as Severstal's CSV (ImageId,ClassId,EncodedPixels)", [
        IMAGES, PREDICTIONS, STORAGE, STUDIES_FLAG, ARTIFACTS, DEVICE,
        flag("--truth", help="Severstal's CSV of the true masks: also print the predictions' Dice against it")]),
    "copy": (copy, "copy a study to another storage, with its notes and artifact files, where `hpsearch run` continues it", [
        flag("--from", dest="from_url", required=True, help="storage URL to copy from"),
        flag("--to", dest="to_url", required=True, help="storage URL to copy to"), STUDY,
        flag("--from-artifacts", help="artifact store to copy from (default: artifacts/ beside the database)"),
        flag("--to-artifacts", help="artifact store to copy to (default: artifacts/ beside the database)")]),
}


class Parser(argparse.ArgumentParser):
    """A bad flag or value is bad input like any other: one line, exit code 2, pointing at the command's -h
    (argparse's own error prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(2, f"hpsearch: error: {message}: see `{self.prog} -h`\n")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="hpsearch", description="Hyperparameter search for PyTorch image models.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (function, what, flags) in COMMANDS.items():
        sub = commands.add_parser(name, help=what, description=what)
        sub.set_defaults(function=function)
        for f in flags:
            sub.add_argument(*f.names, **f.options)
    commands.add_parser("worker").set_defaults(function=worker)  # started by `run --jobs`; not listed
    return top


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 the search failed (trials kept failing) or a bug in hpsearch, 2 bad input, 3 the
    storage was lost, 130 interrupted, 143 stopped by SIGTERM."""
    if not sys.warnoptions:  # libraries' warnings are for their developers; `python -W` still shows them
        warnings.simplefilter("ignore")
    argv = sys.argv[1:] if argv is None else argv
    options = vars(parser().parse_args(argv))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    function, command = options.pop("function"), options.pop("command")
    return exit_code(lambda: function(**options), argv, continues=command in ("run", "worker"))


if __name__ == "__main__":
    sys.exit(main())
