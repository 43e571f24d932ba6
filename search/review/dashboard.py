"""`hpsearch dashboard`: optuna-dashboard's WSGI app on the study's storage, with its artifact store.

Served by the standard library's WSGI server with a thread per request, so that a page's many API
calls do not queue behind one another, and without a log line per request. Requests that do not name
this server, or that would change something from another site's page, are refused (search.serving).
"""

from __future__ import annotations

from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna_dashboard import wsgi

from search.serving import allowed_hosts, guard_wsgi
from search.storage import artifact_store, open_storage


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def make_dashboard(storage_url: str, host: str, port: int, artifacts: str | None = None) -> WSGIServer:
    """A bound, not yet serving, dashboard server: a port in use fails here, before anything is printed."""
    # the plain storage: a dashboard request during a database outage fails at once instead of waiting
    app = wsgi(open_storage(storage_url, wait=None), artifact_store=artifact_store(storage_url, artifacts))
    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    server.set_app(guard_wsgi(app, allowed_hosts(host, server.server_port)))  # the port bound, where --port 0
    return server
