"""`hpsearch dashboard`: optuna-dashboard's WSGI app on the study's storage, with its artifact store.

Served by the standard library's WSGI server with a thread per request, so that a page's many API
calls do not queue behind one another, and without a log line per request.
"""

from __future__ import annotations

import ipaddress
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna_dashboard import wsgi

from search.storage import artifact_store, open_storage


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def make_dashboard(storage_url: str, host: str, port: int, artifacts: str | None = None) -> WSGIServer:
    """A bound, not yet serving, dashboard server: a port in use fails here, before anything is printed."""
    app = wsgi(open_storage(storage_url), artifact_store=artifact_store(storage_url, artifacts))
    return make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
