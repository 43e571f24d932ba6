"""`hpsearch serve`: a study's best model (or the average of its K best, or the steel cascade) behind a REST
API, FastAPI on uvicorn, the models loaded once at start-up.

    POST /predict   multipart, one or more `file` fields: JSON, one object per file, with the fields of
                    `hpsearch predict`'s CSV (label and probabilities; labels; box; run-length masks)
    GET  /healthz   200 while it serves
    GET  /model     the study, trials, parameters, metrics, classes and image size

What it reads is capped before it is read: the body by its Content-Length (a longer one is refused with
413 before a byte of it is read; one without a length with 411), the time a client has to send it (408
after --read-seconds), the files per request, the pixels of each image and of a request's images
together, from their headers (a decompression bomb is refused before it is decoded). A file that is not an
image, or past the request's pixels, gets its reason (`error`) in its place and the others are answered;
a request none of whose files can be answered gets 415 (413 where one was too large), one with no `file`
field 422. Each refused or dropped request is one line on the server's output. Inference runs in a worker
thread, so that the server goes on answering while a model computes.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from search.guard import SAFE_METHODS, Allowed, family, reachable, refusal, url_host, warn_if_exposed
from search.objectives import metric_of
from search.record import StudyRecord, TrialRecord
from search.winner.options import RequestLimits, ServeOptions, names
from trainers.errors import InputError
from trainers.images import BadImage, TooLarge, pixels_of


def log(line: str) -> None:
    """One line per refused or dropped request, on the server's output."""
    print(line, file=sys.stderr, flush=True)


def gate(app, allowed: Allowed, limits: RequestLimits):
    """The ASGI app behind the serving rules (search.guard), the body cap (both applied before any byte of
    the body is read) and the read time limit: the body is read here, whole, within `limits.read_seconds`,
    and handed to the app, so that a slow or vanished client costs one line, not a held connection or a
    traceback."""

    async def gated(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        local = (scope.get("server") or (None,))[0]  # the address this request reached the server on
        client = f"{scope['method']} {scope['path']} from {(scope.get('client') or ('?',))[0]}"
        reason = refusal(scope["method"], headers.get("host"), headers.get("origin"), allowed, local)
        status = 403 if reason else None
        if status is None and scope["method"] not in SAFE_METHODS:
            length = headers.get("content-length")
            if length is None:
                status, reason = 411, "send a Content-Length header"
            elif not length.isdigit() or int(length) > limits.max_bytes:
                status, reason = 413, f"the body is over {limits.max_bytes:,} bytes (--max-bytes)"
        if status is None and scope["method"] not in SAFE_METHODS:
            try:
                async with asyncio.timeout(limits.read_seconds):
                    receive = await read_body(receive)
            except TimeoutError:
                status, reason = 408, f"the body did not arrive within {limits.read_seconds:g} s"
            except ConnectionResetError:
                return log(f"dropped {client}: the client went away before sending its whole body")
        if status is None:
            return await app(scope, receive, send)
        log(f"refused {client}: {status} {reason}")
        await JSONResponse({"detail": reason}, status_code=status, headers={"Connection": "close"})(scope, receive, send)

    return gated


async def read_body(receive):
    """The request's whole body, read now; a `receive` that hands it over in one message."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if sent:  # the app waits for a disconnect after its answer: never, from here
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def within_budget(files: list[tuple[str, bytes]], budget: int) -> list[TooLarge | None]:
    """For each file, whether the request's images up to it stay within `budget` pixels together, from their
    headers (an unreadable header counts nothing here: decoding refuses it)."""
    spent, verdicts = 0, []
    for _, data in files:
        spent += pixels_of(data)
        over = spent > budget
        verdicts.append(TooLarge(f"the request's images are over {budget:,} pixels together (--max-request-pixels): "
                                 f"send this one in another request") if over else None)
    return verdicts


def make_app(answer: Callable[[list[tuple[str, bytes]], int], list], info: dict, options: ServeOptions, port: int):
    """`answer(files, max_pixels)` gives, for each (name, bytes), its fields or the BadImage that left it out."""
    api = FastAPI(title="hpsearch", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()  # one inference at a time: torch uses every core for it

    def infer(files: list[tuple[str, bytes]]) -> list:
        with lock:
            return answer(files, options.max_pixels)

    @api.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @api.get("/model")
    def model() -> dict:
        return info

    @api.post("/predict")
    async def predict(request: Request):
        form = await request.form()
        uploads = [v for k, v in form.multi_items() if k == "file" and hasattr(v, "read")]
        if not uploads:
            return JSONResponse({"detail": "no `file` field: send each image as a multipart field named file"}, 422)
        if len(uploads) > options.max_files:
            return JSONResponse({"detail": f"{len(uploads)} files: at most {options.max_files} a request (--max-files)"}, 413)
        files = [(u.filename or f"file{i}", await u.read()) for i, u in enumerate(uploads)]
        verdicts = within_budget(files, options.max_request_pixels)
        taken = [f for f, over in zip(files, verdicts) if over is None]
        answers = iter(await run_in_threadpool(infer, taken) if taken else [])
        results = [over or next(answers) for over in verdicts]
        bad = [(name, r) for (name, _), r in zip(files, results) if isinstance(r, BadImage)]
        if len(bad) == len(files):  # nothing to answer: the request is refused
            status = 413 if any(isinstance(r, TooLarge) for _, r in bad) else 415
            log(f"refused POST /predict: {status} " + "; ".join(f"{name}: {r}" for name, r in bad))
            return JSONResponse({"detail": [{"file": name, "reason": str(r)} for name, r in bad]}, status)
        # each file answered, or its reason in its place, as `hpsearch predict` leaves a file out
        return [{"file": name, "error": str(r)} if isinstance(r, BadImage) else {"file": name, **r}
                for (name, _), r in zip(files, results)]

    return gate(api, options.allowed(port), options)


def ensemble_answer(ensemble):
    def answer(files: list[tuple[str, bytes]], max_pixels: int) -> list:
        fields, problems = ensemble.answer([data for _, data in files], max_pixels)
        return [problem or f for f, problem in zip(fields, problems)]

    return answer


def cascade_answer(cascade):
    """The cascade's masks, as the segmentation task's fields (run-length masks per class found)."""
    from trainers.rle import rle_encode

    def answer(files: list[tuple[str, bytes]], max_pixels: int) -> list:
        keys = [str(i) for i in range(len(files))]  # names may repeat
        found, skipped = cascade.predict([(k, data) for k, (_, data) in zip(keys, files)], max_pixels)
        problems = dict(skipped)
        masks = {k: [] for k in keys}
        for key, cls, mask in found:
            masks[key].append({"class": cls, "rle": rle_encode(mask)})
        return [problems[k] if k in problems else {"masks": masks[k]} for k in keys]

    return answer


def model_info(study, trials, ensemble) -> dict:
    """What `GET /model` says: the study, each served trial (parameters, valid and test metrics, image size),
    the task and classes. `image_size` is the models' side in pixels, as in model.json; a list only for an
    ensemble of models trained at several sizes."""
    best = StudyRecord.read(study).best_evaluation or {}
    sizes = sorted({p.card["image_size"] for p in ensemble.predictors})
    return {
        "study": study.study_name,
        "trials": [{"number": t.number, "params": t.params, "valid": metric_of(t), "image_size": p.card["image_size"],
                    "test": best["table"]["test"] if best.get("trial") == t.number else None,
                    "costs": TrialRecord.read(t).costs}
                   for t, p in zip(trials, ensemble.predictors)],
        "task": ensemble.predictors[0].card["task"],
        "classes": ensemble.class_names,
        "image_size": sizes[0] if len(sizes) == 1 else sizes,
    }


def run_serve(options: ServeOptions) -> None:
    """`hpsearch serve`: the best model, the K best ensembled, or the steel cascade, until Ctrl-C."""
    from search.winner.models import best_models
    from trainers.loop import pick_device

    sock = listen(options.host, options.port)  # a busy port fails before the models load
    warn_if_exposed(options.host, "use the models")
    cascade = names(options.studies) if options.cascade else None
    if cascade:
        from search.winner.cascade import load_cascade

        answer, info = cascade_answer(load_cascade(options.location, cascade, pick_device(options.device))), {"cascade": cascade}
    else:
        study, trials, ensemble = best_models(options, pick_device(options.device))
        answer, info = ensemble_answer(ensemble), model_info(study, trials, ensemble)
    bound = sock.getsockname()[1]
    print(f"serving {', '.join(cascade or []) or info['study']} on http://{url_host(reachable(options.host))}:{bound}: POST "
          f"/predict (multipart, `file` fields), GET /healthz, GET /model (Ctrl-C stops it)", flush=True)
    serve(make_app(answer, info, options, bound), sock)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket: a busy port fails here, with one line, before the models load."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it each answer
    # waited 40 ms for the client's delayed ACK (Nagle): p50 48 ms for one image, 3 ms with it
    sock = socket.socket(family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family(host) == socket.AF_INET6:  # `::` takes IPv4 connections too
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise InputError(f"cannot serve on {host}:{port} ({err.strerror}): pick another --port or --host") from err
    sock.listen(128)
    return sock


def serve(app, sock: socket.socket) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
