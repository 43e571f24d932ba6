"""`hpsearch dashboard`: optuna-dashboard's WSGI app on the study's storage, with its artifact store.

Served by the standard library's WSGI server with a thread per request, so that a page's many API
calls do not queue behind one another, and without a log line per request. Requests that do not name
this server, or that would change something from another site's page, are refused (search.serving).
"""

from __future__ import annotations

import socket
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna_dashboard import wsgi

from search.serving import allowed_hosts, family, guard_wsgi, reachable, url_host, warn_if_exposed
from search.storage import Location
from trainers.data import DataError


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


def make_dashboard(where: Location, host: str, port: int, allow: list[str] = ()) -> WSGIServer:
    """A bound, not yet serving, dashboard server: a port in use fails here, before anything is printed."""
    # the plain storage: a dashboard request during a database outage fails at once instead of waiting
    app = wsgi(where.open(wait=None), artifact_store=where.artifact_store())
    server_class = _IPv6Server if family(host) == socket.AF_INET6 else _ThreadingServer
    try:
        server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as err:
        raise DataError(f"cannot serve on {host}:{port} ({err.strerror}): pick another --port or --host") from err
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
