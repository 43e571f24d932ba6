"""hpsearch's command line: a table of small command functions (COMMANDS), each taking its command's options, one
typed object whose fields declare the flags (search.declare), and handing it to one function of search/.

Commands import what they need when they run: torch and timm take seconds to import, and `hpsearch -h`
should not wait for them.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import optuna

from search.declare import Options, add_options, at_least, option, parsed
from search.errors import exit_code
from search.guard import Listening
from search.options import ARTIFACTS, STORAGE, STUDY, OnStudy, StudyIn
from search.storage import DEFAULT_STORAGE, Location, load_study
from search.study.config import RunConfig
from search.winner.options import CascadeOptions, EvaluateOptions, ExportOptions, PredictOptions, ServeOptions
from trainers.errors import InputError

# Before torch starts: OpenMP's threads spin a short while when they wait, then sleep. Alone on 2 cores, a
# trial took 1.0x to 1.1x the time of the fastest setting, threads that only sleep (OMP_WAIT_POLICY=PASSIVE)
# 1.45x; beside another process's busy threads, spinning briefly took 3 to 4 times its time alone (ACTIVE 6 to
# 8), so a trial that starts beside such work takes the cores left free to it (trainers.cores): 2.3x to 2.6x.
# benchmarks/shared_cpu.py, figures in the README's "Measured". Set either variable to have it otherwise.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "100000")


@dataclass(kw_only=True)
class Nothing(Options):
    """A command without options."""


@dataclass(kw_only=True)
class StatusOptions(StudyIn):
    trials: int | None = option("the finished trials wanted (default: what the last run asked for)", None, check=at_least(1))


@dataclass(kw_only=True)
class BestOptions(OnStudy):
    out: str | None = option("copy the best trial's files into this folder under their own names (model.safetensors, ...)",
                             None)


@dataclass(kw_only=True)
class ReportOptions(OnStudy):
    out: str = option("folder to write index.html into")


@dataclass(kw_only=True)
class DashboardOptions(Listening):
    storage: str = STORAGE.field(DEFAULT_STORAGE)
    port: int = option("port to listen on (default %(default)s)", 8080)
    artifacts: str | None = ARTIFACTS.field(None)


@dataclass(kw_only=True)
class CopyOptions(Options):
    from_url: str = option("storage URL to copy from", flag="--from")
    to_url: str = option("storage URL to copy to", flag="--to")
    study: str | None = STUDY.field(None)
    from_artifacts: str | None = option("artifact store to copy from (default: artifacts/ beside the database)", None)
    to_artifacts: str | None = option("artifact store to copy to (default: artifacts/ beside the database)", None)


def run(config: RunConfig) -> None:
    from search.study.run import run

    run(config)


def worker(_: Nothing) -> None:
    """A --jobs worker: the options of the run that started it come in its environment."""
    from search.study.config import WORKER_OPTIONS
    from search.study.run import run

    run(RunConfig.from_worker(os.environ[WORKER_OPTIONS]))


def spaces(_: Nothing) -> None:
    from search.review.report import spaces_table

    print(spaces_table())


def _study(options: StudyIn, need_complete: bool = True):
    """The storage location, the storage (opened once) and the study a command looks at."""
    where = options.location
    where.require_database()
    opened = where.open()
    return where, opened, load_study(where, options.study, need_complete, storage=opened)


def best(options: BestOptions) -> None:
    from search.review.report import best_summary

    where, opened, chosen = _study(options)
    print(best_summary(chosen, opened, where, Path(options.out) if options.out else None))


def status(options: StatusOptions) -> None:
    from search.review.report import status_summary

    print(status_summary(_study(options, need_complete=False)[2], options.trials))


def front(options: StudyIn) -> None:
    from search.review.front import front_table, metric_name

    chosen = _study(options, need_complete=False)[2]
    print(front_table(chosen, metric_name(chosen)))


def export(options: ExportOptions) -> None:
    if options.csv:
        from search.review.report import export_csv

        print(export_csv(_study(options)[2], Path(options.csv)))
    elif options.format and options.out:
        from search.winner.export import export

        print(export(options))
    else:
        raise InputError("say what to export: --csv FILE (every trial), or --format onnx|torchscript|exported --out DIR (a model)")


def predict(options: PredictOptions) -> None:
    from search.winner.predict import run_predict

    print(run_predict(options))


def evaluate(options: EvaluateOptions) -> None:
    from search.winner.evaluate import run_evaluate

    print(run_evaluate(options))


def serve(options: ServeOptions) -> None:
    from search.winner.serve import run_serve

    run_serve(options)


def report(options: ReportOptions) -> None:
    from search.review.report_page import write_report

    where, opened, chosen = _study(options, need_complete=False)
    page = write_report(chosen, opened, where.artifact_store(), Path(options.out))
    print(f"wrote {page}: open it in a browser, no server needed")


def dashboard(options: DashboardOptions) -> None:
    from search.review.dashboard import run_dashboard

    run_dashboard(Location(options.storage, options.artifacts), options.host, options.port, options.allow_host)


def cascade(options: CascadeOptions) -> None:
    from search.winner.cascade import run_cascade

    print(run_cascade(options))


def copy(options: CopyOptions) -> None:
    from search.study.copy import copy_study

    print(copy_study(Location(options.from_url, options.from_artifacts), Location(options.to_url, options.to_artifacts),
                     options.study))


class Command(NamedTuple):
    function: Callable[[Options], None]
    what: str  # what it does, for -h
    options: type  # its options: a dataclass whose fields declare its flags


COMMANDS: dict[str, Command] = {
    "run": Command(run, "run a search until the study has --trials finished trials", RunConfig),
    "spaces": Command(spaces, "list the search spaces", Nothing),
    "best": Command(best, "show the best trial's parameters, metrics and model files", BestOptions),
    "status": Command(status, "trials by state, the best so far, trials per hour, time left", StatusOptions),
    "front": Command(front, "the trials no other trial beats on the metric, latency and size at once", StudyIn),
    "export": Command(export, "write every trial to a CSV file, or a trial's model as ONNX, TorchScript or torch.export's "
                              "program", ExportOptions),
    "predict": Command(predict, "predict image files with the best model, or the average of the K best", PredictOptions),
    "evaluate": Command(evaluate, "the train/valid/test table of the K best trials' ensemble beside the best trial's, or of "
                                  "one trial", EvaluateOptions),
    "serve": Command(serve, "serve the best model (or the K best, or the steel cascade) over REST", ServeOptions),
    "report": Command(report, "write a self-contained HTML page about a study", ReportOptions),
    "dashboard": Command(dashboard, "serve optuna-dashboard on the storage, with the artifacts", DashboardOptions),
    "cascade": Command(cascade, "find defects with the best models of three steel studies (is there a defect? which types? "
                                "where?), written as Severstal's CSV (ImageId,ClassId,EncodedPixels)", CascadeOptions),
    "copy": Command(copy, "copy a study to another storage, with its notes and artifact files, where `hpsearch run` "
                          "continues it", CopyOptions),
}
WORKER = Command(worker, "", Nothing)  # started by `run --jobs`; not listed


class Parser(argparse.ArgumentParser):
    """A bad flag or value is bad input like any other: one line, exit code 2, pointing at the command's -h
    (argparse's own error prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(2, f"hpsearch: error: {message}: see `{self.prog} -h`\n")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="hpsearch", description="Hyperparameter search for PyTorch image models.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.what, description=command.what)
        sub.set_defaults(command=name)
        add_options(sub, command.options)
    commands.add_parser("worker")
    return top


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 the search failed (trials kept failing) or a bug in hpsearch, 2 bad input, 3 the
    storage was lost, 130 interrupted, 143 stopped by SIGTERM."""
    if not sys.warnoptions:  # libraries' warnings are for their developers; `python -W` still shows them
        warnings.simplefilter("ignore")
    argv = sys.argv[1:] if argv is None else argv
    namespace = parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command = COMMANDS.get(namespace.command, WORKER)
    return exit_code(lambda: command.function(parsed(command.options, namespace)), argv,
                     continues=command.function in (run, worker))


if __name__ == "__main__":
    sys.exit(main())
