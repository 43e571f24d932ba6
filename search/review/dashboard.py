"""`hpsearch dashboard`: optuna-dashboard's WSGI app on the study's storage, with its artifact store.

Served by the standard library's WSGI server with a thread per request, so that a page's many API
calls do not queue behind one another, and without a log line per request. Requests that do not name
this server, or that would change something from another site's page, are refused (search.guard).
"""

from __future__ import annotations

import json
import re
import socket
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.artifacts.exceptions import ArtifactNotFound
from optuna_dashboard import wsgi

from search.guard import allowed_hosts, family, guard_wsgi, reachable, url_host, warn_if_exposed
from search.storage import Location
from trainers.errors import InputError


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def server_bind(self):
        if self.address_family == socket.AF_INET6:  # `::` takes IPv4 connections too
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass

    def get_environ(self):
        """With the address this request reached the server on: a server on every address answers to each."""
        return super().get_environ() | {"hpsearch.local": self.connection.getsockname()[0]}


STUDY_DETAIL = re.compile(r"^/api/studies/\d+$")  # the study and its trials, with each trial's artifacts
ARTIFACT = re.compile(r"^/artifacts/\d+/(?:\d+/)?([0-9a-fA-F-]+)$")  # a file's download


def without_removed_weights(app, store):
    """optuna-dashboard lists every file a trial uploaded, and a finished trial's list cannot change (Optuna
    refuses to update a finished trial); the weights that `run --keep` removed are taken out of the study's
    answer here, so that the dashboard does not offer a download that can only fail (it answered 500)."""

    def exists(artifact_id: str) -> bool:
        try:
            store.open_reader(artifact_id).close()
            return True
        except ArtifactNotFound:
            return False

    def filtered(environ, start_response):
        path = environ.get("PATH_INFO", "")
        download = ARTIFACT.match(path)
        if environ["REQUEST_METHOD"] == "GET" and download and not exists(download[1]):
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"this file was removed: a trial's weights are kept while it is among the best (run --keep)"]
        if environ["REQUEST_METHOD"] != "GET" or not STUDY_DETAIL.match(path):
            return app(environ, start_response)
        answer = {}
        body = b"".join(app(environ, lambda status, headers, exc_info=None: answer.update(status=status, headers=headers)))
        if answer["status"].startswith("200"):
            detail = json.loads(body)
            for trial in detail.get("trials", []):
                trial["artifacts"] = [a for a in trial.get("artifacts", [])
                                      if a.get("filename") != "model.safetensors" or exists(a["artifact_id"])]
            body = json.dumps(detail).encode()
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        start_response(answer["status"], headers + [("Content-Length", str(len(body)))])
        return [body]

    return filtered


def make_dashboard(where: Location, host: str, port: int, allow: list[str] = ()) -> WSGIServer:
    """A bound, not yet serving, dashboard server: a port in use fails here, before anything is printed."""
    # the plain storage: a dashboard request during a database outage fails at once instead of waiting
    store = where.artifact_store()
    app = without_removed_weights(wsgi(where.open(wait=None), artifact_store=store), store)
    server_class = _IPv6Server if family(host) == socket.AF_INET6 else _ThreadingServer
    try:
        server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as err:
        raise InputError(f"cannot serve on {host}:{port} ({err.strerror}): pick another --port or --host") from err
    server.set_app(guard_wsgi(app, allowed_hosts(host, server.server_port, allow)))  # the port bound, where --port 0
    return server


def run_dashboard(where: Location, host: str, port: int, allow: list[str] = ()) -> None:
    """`hpsearch dashboard`: serve until Ctrl-C."""
    where.require_database()
    warn_if_exposed(host, "see and delete studies")
    server = make_dashboard(where, host, port, allow)
    print(f"optuna-dashboard for {where.safe}: open http://{url_host(reachable(host))}:{server.server_address[1]}/dashboard/ "
          f"(Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\ndashboard stopped", file=sys.stderr)
