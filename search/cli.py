"""hpsearch's command line: one short function per command, each calling into search/.

Commands import what they need when they run: torch and timm take seconds to import,
and `hpsearch -h` should not wait for them.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import optuna

from search.errors import Stop
from search.study.keep import KEEP
from search.study.resume import CHECKPOINT_EVERY
from search.study.strategy import PRUNERS, SAMPLERS
from search.storage import (
    DEFAULT_STORAGE, STORAGE_WAIT, artifact_store, default_artifacts_dir, load_study, open_storage,
    require_database, safe_url,
)
from trainers.data import DataError

STUDIES = ("steel-defect", "steel-types", "steel-masks")  # hpsearch cascade's default studies


def cmd_run(args) -> int:
    from search.study.run import RunOptions, run
    from spaces import get_space

    space = get_space(args.space)
    opts = RunOptions(
        space=space,
        storage=args.storage,
        study_name=args.new_study or args.study or space.name,
        new_study=args.new_study is not None,
        trials=args.trials,
        data=args.data,
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        pretrained=True if args.pretrained or args.weights else None,
        weights=args.weights,
        artifacts=args.artifacts,
        progress=not args.quiet,
        space_arg=args.space,
        heartbeat=args.heartbeat,
        storage_wait=args.storage_wait,
        keep=args.keep,
        checkpoint_every=args.checkpoint_every,
        sampler=args.sampler,
        pruner=args.pruner,
        jobs=args.jobs,
        worker=args.worker,
    )
    run(opts)
    return 0


def cmd_spaces(args) -> int:
    from search.review.report import describe_space
    from spaces import list_spaces
    from trainers.tasks import get_task

    for space in list_spaces():
        print(f"{space.name:12s} {space.task:10s} {space.summary}")
        print(f"{'':23s} --data: {space.data_format or get_task(space.task).data_format} (built in: {space.data})")
        crop = f", region {space.crop}" if isinstance(space.crop, tuple) else ", each image cut to its box" if space.crop else ""
        print(f"{'':23s} {space.image_size}px {space.resize}{crop}, {space.epochs} epochs, maximizes valid {space.metric}; {space.sampler} sampler, {space.pruner} pruner")
        print(f"{'':23s} {describe_space(space)}")
    return 0


def cmd_best(args) -> int:
    from search.review.report import best_summary

    study = load_study(args.storage, args.study)
    artifacts = Path(args.artifacts) if args.artifacts else default_artifacts_dir(args.storage)
    store = artifact_store(args.storage, args.artifacts, create=False)
    print(best_summary(study, study._storage, artifacts.resolve(), store, Path(args.out) if args.out else None))
    return 0


def cmd_status(args) -> int:
    from search.review.report import status_summary

    study = load_study(args.storage, args.study, need_complete=False)
    print(status_summary(study, args.trials or study.user_attrs.get("trials_wanted")))
    return 0


def cmd_export(args) -> int:
    if args.csv:
        from search.review.report import export_csv

        study = load_study(args.storage, args.study)
        rows = export_csv(study, Path(args.csv))
        print(f"wrote {rows} trials of {study.study_name!r} to {args.csv}")
        return 0
    if not (args.format and args.out):
        raise ValueError("say what to export: --csv FILE (every trial), or --format onnx|torchscript --out DIR (a model)")
    from search.winner.export import export

    print(export(args.storage, args.study, args.artifacts, args.trial, args.format, Path(args.out), args.data))
    return 0


def cmd_predict(args) -> int:
    from search.winner.predict import run_predict
    from trainers.loop import pick_device

    print(run_predict(args.storage, args.study, args.artifacts, args.images, Path(args.out), args.ensemble, pick_device(args.device)))
    return 0


def cmd_evaluate(args) -> int:
    from search.winner.evaluate import compare, study_data
    from search.winner.models import best_models
    from trainers.loop import pick_device
    from trainers.predict import Ensemble

    device = pick_device(args.device)
    study, trials, ensemble = best_models(args.storage, args.study, args.artifacts, args.ensemble, device)
    data = study_data(study, ensemble, device, args.data)
    print(compare(Ensemble(ensemble.predictors[:1]), ensemble, data, [t.number for t in trials]))
    return 0


def cmd_serve(args) -> int:
    from search.serving import warn_if_exposed
    from search.winner import serve
    from search.winner.models import best_models
    from trainers.loop import pick_device

    sock = serve.listen(args.host, args.port)  # a busy port fails before the models load
    warn_if_exposed(args.host, "use the models")
    device = pick_device(args.device)
    if args.cascade:
        from search.winner.cascade import load_cascade

        studies = [name.strip() for name in args.studies.split(",")]
        answer, info = serve.cascade_answer(load_cascade(args.storage, studies, args.artifacts, device)), {"cascade": studies}
    else:
        study, trials, ensemble = best_models(args.storage, args.study, args.artifacts, args.ensemble, device)
        answer, info = serve.ensemble_answer(ensemble), serve.model_info(study, trials, ensemble)
    limits = serve.Limits(args.max_bytes, args.max_files, args.max_pixels)
    host, port = sock.getsockname()[:2]
    app = serve.make_app(answer, info, limits, args.host, port)
    print(f"serving {', '.join(info.get('cascade', [])) or info['study']} on http://{args.host}:{port}: POST /predict "
          f"(multipart, `file` fields), GET /healthz, GET /model (Ctrl-C stops it)", flush=True)
    serve.serve(app, sock)
    return 0


def cmd_dashboard(args) -> int:
    from search.review.dashboard import make_dashboard
    from search.serving import warn_if_exposed

    require_database(args.storage)
    warn_if_exposed(args.host, "see and delete studies")
    try:
        server = make_dashboard(args.storage, args.host, args.port, args.artifacts)
    except OSError as err:
        raise DataError(f"cannot serve on {args.host}:{args.port} ({err.strerror}): pick another --port or --host") from err
    host, port = server.server_address[:2]
    print(f"optuna-dashboard for {safe_url(args.storage)}: open http://{host}:{port}/dashboard/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\ndashboard stopped", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from search.review.report_page import write_report
    from search.storage import artifact_store

    study = load_study(args.storage, args.study, need_complete=False)
    store = artifact_store(args.storage, args.artifacts)
    page = write_report(study, open_storage(args.storage), store, Path(args.out))
    print(f"wrote {page}: open it in a browser, no server needed")
    return 0


def cmd_cascade(args) -> int:
    from search.winner.cascade import run_cascade
    from trainers.loop import pick_device

    studies = [name.strip() for name in args.studies.split(",")]
    truth = Path(args.truth) if args.truth else None
    print(run_cascade(args.storage, studies, args.artifacts, args.images, Path(args.out), pick_device(args.device), truth))
    return 0


def cmd_copy(args) -> int:
    from search.study.copy import copy_study

    source = load_study(args.from_url, args.study, need_complete=False)
    print(copy_study(args.from_url, args.to_url, source.study_name, args.from_artifacts, args.to_artifacts))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hpsearch", description="Hyperparameter search for PyTorch image models.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def artifacts_flag(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--artifacts", help="folder of the artifact store (default: artifacts/ beside the database)")

    def device_flag(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")

    def command(name: str, fn, help: str, study_help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(fn=fn)
        sub.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
        sub.add_argument("--study", help=study_help)
        return sub

    run_ = command("run", cmd_run, "run a search until the study has --trials finished trials", "study name (default: the space's name)")
    run_.add_argument("--space", required=True, help="a space name (see `hpsearch spaces`) or a .py file that registers one")
    run_.add_argument("--trials", type=int, default=50, help="finished trials the study should have in total (default 50)")
    run_.add_argument("--data", help="a folder of class folders, or a CSV manifest path,label[,split] (default: the space's data)")
    run_.add_argument("--epochs", type=int, help="epochs per trial, overriding the space's (for quick runs)")
    device_flag(run_)
    run_.add_argument("--seed", type=int, default=0, help="seed of the split, the sampler and training (default 0)")
    run_.add_argument("--pretrained", action="store_true", help="start timm models from ImageNet weights")
    run_.add_argument("--weights", help="a weights file, or a folder of <model>.safetensors files; implies --pretrained")
    artifacts_flag(run_)
    run_.add_argument("--quiet", action="store_true", help="no progress bars")
    run_.add_argument("--new-study", metavar="NAME", help="start a new study of this name (refused if it exists)")
    run_.add_argument("--jobs", type=int, default=1, help="worker processes on this machine, sharing the study (default 1)")
    run_.add_argument("--heartbeat", type=int, default=30,
                      help="seconds between a running trial's signs of life; a trial silent for 3 of them is "
                           "failed and retried from its last epoch (default 30)")
    run_.add_argument("--sampler", choices=sorted(SAMPLERS), help="how trials are drawn (default: the space's; a resumed "
                      "study keeps its own)")
    run_.add_argument("--pruner", choices=sorted(PRUNERS), help="how hopeless trials are stopped (default: the space's; a "
                      "resumed study keeps its own)")
    run_.add_argument("--keep", type=int, default=KEEP, metavar="K",
                      help=f"keep the weights of the K best trials, removing those of a trial that falls out of them "
                           f"(default {KEEP}); their pictures and notes stay")
    run_.add_argument("--checkpoint-every", type=float, default=CHECKPOINT_EVERY, metavar="SECONDS",
                      help=f"write a trial's epoch checkpoint after at least this much training since the last one "
                           f"(default {CHECKPOINT_EVERY}; 0: after every epoch): a crash costs at most this much work")
    run_.add_argument("--storage-wait", type=float, default=STORAGE_WAIT, metavar="SECONDS",
                      help=f"how long a worker waits for a database that went away before it stops with exit code 3 "
                           f"(default {STORAGE_WAIT}); the same command then continues the study")
    run_.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)  # set by --jobs for its workers

    spaces = commands.add_parser("spaces", help="list the search spaces", description="list the search spaces")
    spaces.set_defaults(fn=cmd_spaces)
    best = command("best", cmd_best, "show the best trial's parameters, metrics and model files", "study name (default: the only one)")
    artifacts_flag(best)
    best.add_argument("--out", help="copy the best trial's files into this folder under their own names (model.safetensors, ...)")
    status = command("status", cmd_status, "trials by state, the best so far, trials per hour, time left", "study name (default: the only one)")
    status.add_argument("--trials", type=int, help="the finished trials wanted (default: what the last run asked for)")
    export = command("export", cmd_export, "write every trial to a CSV file, or a trial's model as ONNX or TorchScript",
                     "study name (default: the only one)")
    export.add_argument("--csv", help="the CSV file to write, a row per trial")
    export.add_argument("--format", choices=("onnx", "torchscript"), help="export a trained model in this format")
    export.add_argument("--out", help="with --format: the folder to write the model and its model.json into")
    export.add_argument("--trial", type=int, help="with --format: the trial whose model (default: the best)")
    artifacts_flag(export)
    export.add_argument("--data", help="with --format: the study's images, where they moved (checked on its test split)")
    predict = command("predict", cmd_predict, "predict image files with the best model, or the average of the K best",
                      "study name (default: the only one)")
    predict.add_argument("images", nargs="+", help="image files, or folders of them")
    predict.add_argument("--out", default="predictions.csv", help="the CSV file to write (default predictions.csv)")
    predict.add_argument("--ensemble", type=int, default=1, metavar="K", help="average the K best trials' answers (default 1)")
    device_flag(predict)
    artifacts_flag(predict)
    evaluate = command("evaluate", cmd_evaluate, "the train/valid/test table of the K best trials' ensemble beside the best trial's",
                       "study name (default: the only one)")
    evaluate.add_argument("--ensemble", type=int, default=5, metavar="K", help="average the K best trials (default 5)")
    evaluate.add_argument("--data", help="the study's images, where they moved")
    device_flag(evaluate)
    artifacts_flag(evaluate)
    serve = command("serve", cmd_serve, "serve the best model (or the K best, or the steel cascade) over REST",
                    "study name (default: the only one)")
    serve.add_argument("--ensemble", type=int, default=1, metavar="K", help="average the K best trials' answers (default 1)")
    serve.add_argument("--cascade", action="store_true", help="serve the steel cascade of three studies (see --studies)")
    serve.add_argument("--studies", default=",".join(STUDIES), help=f"with --cascade: the defect, types and masks studies "
                                                                     f"(default {','.join(STUDIES)})")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--max-bytes", type=int, default=10_000_000, help="the largest request body, in bytes (default 10 MB)")
    serve.add_argument("--max-files", type=int, default=32, help="the most images in one request (default 32)")
    serve.add_argument("--max-pixels", type=int, default=89_478_485, help="the most pixels in one image (default PIL's 89,478,485)")
    device_flag(serve)
    artifacts_flag(serve)
    report = command("report", cmd_report, "write a self-contained HTML page about a study", "study name (default: the only one)")
    report.add_argument("--out", required=True, help="folder to write index.html into")
    artifacts_flag(report)
    dashboard = commands.add_parser("dashboard", help="serve optuna-dashboard on the storage, with the artifacts",
                                    description="serve optuna-dashboard on the storage, with the artifacts")
    dashboard.set_defaults(fn=cmd_dashboard)
    dashboard.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    artifacts_flag(dashboard)
    cascade = commands.add_parser("cascade", help="find defects with the best models of three steel studies",
                                  description="is there a defect? which types? where? with the best trial of each of "
                                              "three studies; writes Severstal's CSV (ImageId,ClassId,EncodedPixels)")
    cascade.set_defaults(fn=cmd_cascade)
    cascade.add_argument("images", nargs="+", help="image files, or folders of them")
    cascade.add_argument("--out", default="predictions.csv", help="the CSV file to write (default predictions.csv)")
    cascade.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    cascade.add_argument("--studies", default=",".join(STUDIES),
                         help=f"the defect, types and masks studies, comma-separated (default {','.join(STUDIES)})")
    artifacts_flag(cascade)
    device_flag(cascade)
    cascade.add_argument("--truth", help="Severstal's CSV of the true masks: also print the predictions' Dice against it")
    copy = commands.add_parser("copy", help="copy a study to another storage, with its notes and artifact files",
                               description="copy a study to another storage, with its notes and artifact files; "
                                           "`hpsearch run` continues it there")
    copy.set_defaults(fn=cmd_copy)
    copy.add_argument("--from", dest="from_url", required=True, help="storage URL to copy from")
    copy.add_argument("--to", dest="to_url", required=True, help="storage URL to copy to")
    copy.add_argument("--study", help="study name (default: the only one)")
    copy.add_argument("--from-artifacts", help="artifact store to copy from (default: artifacts/ beside the database)")
    copy.add_argument("--to-artifacts", help="artifact store to copy to (default: artifacts/ beside the database)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 the search failed (trials kept failing), 2 bad input, 3 the storage was lost,
    130 interrupted."""
    if not sys.warnoptions:  # libraries' warnings are for their developers; `python -W` still shows them
        warnings.simplefilter("ignore")
    args = parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for flag in ("trials", "jobs", "heartbeat", "storage_wait", "keep", "ensemble", "max_bytes", "max_files", "max_pixels"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            parser().error(f"--{flag.replace('_', '-')} must be at least 1")
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a reader that went away (`| head`) shows here, not as an error at exit
        return code
    except ValueError as err:  # our input errors: DataError, WeightsUnavailable, unknown names
        print(f"hpsearch: error: {err}", file=sys.stderr)
        return 2
    except Stop as err:  # the storage was lost (3), trials kept failing (1)
        print(f"hpsearch: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("\nhpsearch: interrupted; run the same command again to continue the study", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hpsearch spaces | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's advice: no error at exit either
        return 0


if __name__ == "__main__":
    sys.exit(main())
