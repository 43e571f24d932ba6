"""The rules of everything hpsearch serves (the dashboard, the model server): this machine only by default,
a warning for any other address, and requests refused unless their Host names this server and, when
they would change something, their Origin is this server's own pages.

Binding to 127.0.0.1 is not enough on its own: a page the user visits can make the browser send
`DELETE /api/studies/1` to 127.0.0.1 (a cross-site request), or rename its own site to 127.0.0.1 (DNS
rebinding) and read the answers. The first carries a foreign Origin, the second a foreign Host.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

WILDCARDS = ("0.0.0.0", "::", "")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # they change nothing


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def warn_if_exposed(host: str, what: str) -> None:
    """One line on stderr when `host` is not this machine alone."""
    if not is_loopback(host):
        print(f"hpsearch: warning: serving on {host}: anyone who can reach this address can {what} "
              f"(there is no authentication)", file=sys.stderr, flush=True)


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host headers that name this server: its address, the loopback names when it listens there,
    and, when it listens on every address, this machine's names and addresses too."""
    names = {host}
    if is_loopback(host) or host in WILDCARDS:
        names |= set(LOOPBACK_NAMES)
    if host in WILDCARDS:
        names |= {socket.gethostname(), socket.getfqdn()}
        try:
            names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    names -= set(WILDCARDS)
    spelled = {f"[{n}]" if ":" in n else n for n in names}
    return frozenset({f"{n}:{port}".lower() for n in spelled} | ({n.lower() for n in spelled} if port == 80 else set()))


def refusal(method: str, host: str | None, origin: str | None, allowed: frozenset[str]) -> str | None:
    """Why a request is refused (answered 403), or None when it may go on."""
    if (host or "").lower() not in allowed:
        return f"refused: Host {host!r} is not this server ({', '.join(sorted(allowed))})"
    if method.upper() not in SAFE_METHODS and origin is not None and origin.lower() not in {f"http://{h}" for h in allowed}:
        return f"refused: a {method} request from another site ({origin})"
    return None


def guard_wsgi(app, allowed: frozenset[str]):
    """`app` behind `refusal`."""

    def guarded(environ, start_response):
        reason = refusal(environ["REQUEST_METHOD"], environ.get("HTTP_HOST"), environ.get("HTTP_ORIGIN"), allowed)
        if reason is None:
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
        return [reason.encode()]

    return guarded
