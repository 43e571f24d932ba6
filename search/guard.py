"""The rules of everything hpsearch serves (the dashboard, the model server): this machine only by default,
a warning for any other address, and requests refused unless their Host names this server and, when
they would change something, their Origin is this server's own pages.

Binding to 127.0.0.1 is not enough on its own: a page the user visits can make the browser send
`DELETE /api/studies/1` to 127.0.0.1 (a cross-site request), or rename its own site to 127.0.0.1 (DNS
rebinding) and read the answers. The first carries a foreign Origin, the second a foreign Host.

A server bound to every address (0.0.0.0, ::) answers to the address each request reached it on (the
connection's own end: any of the machine's addresses), to this machine's names, and to the names the user
allows (`--allow-host NAME`: a Kubernetes Service's, a proxy's), with any port for those.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass, field

from search.declare import Options, option

WILDCARDS = ("0.0.0.0", "::", "")
LOCAL = "127.0.0.1"  # what a server binds to unless told otherwise
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # they change nothing


@dataclass(kw_only=True)
class Listening(Options):
    """Where a server listens, and the names it answers to besides its own (a command's options)."""

    host: str = option("address to listen on (default %(default)s: this machine only; 0.0.0.0 or :: every address, with a "
                       "warning)", LOCAL)
    allow_host: list[str] = option("a further name requests may call this server by (a Kubernetes Service's, a proxy's), "
                                   "with any port; repeatable. Every other Host and Origin is refused", [], metavar="NAME")

    def allowed(self, port: int) -> Allowed:
        return allowed_hosts(self.host, port, self.allow_host)


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


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def url_host(host: str) -> str:
    """A host as a URL or a Host header writes it: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def reachable(host: str) -> str:
    """An address others can open a bound server at: `host` itself, or for a wildcard the address this machine
    reaches the network from (no packet is sent), else its name."""
    if host not in WILDCARDS:
        return host
    for probe in ("192.0.2.1", "2001:db8::1"):  # documentation addresses: only the route to them is looked up
        try:
            with socket.socket(family(probe), socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                return s.getsockname()[0]
        except OSError:
            continue
    return socket.gethostname()


@dataclass(frozen=True)
class Allowed:
    """The Host headers a server bound to `host`:`port` answers to."""

    host: str
    port: int
    names: frozenset[str] = field(default_factory=frozenset)  # --allow-host: matched with any port

    @property
    def own(self) -> frozenset[str]:
        """Its address, the loopback names when it listens there, and this machine's names on a wildcard."""
        names = {self.host}
        if is_loopback(self.host) or self.host in WILDCARDS:
            names |= set(LOOPBACK_NAMES)
        if self.host in WILDCARDS:
            names |= {socket.gethostname(), socket.getfqdn()}
        names -= set(WILDCARDS)
        spelled = {url_host(n).lower() for n in names}
        return frozenset({f"{n}:{self.port}" for n in spelled} | (spelled if self.port == 80 else set()))

    def __contains__(self, host_and_local: tuple[str | None, str | None]) -> bool:
        """Whether a Host header names this server; `local` is the address the request reached it on."""
        host, local = host_and_local
        host = (host or "").lower()
        if host in self.own or host.rsplit(":", 1)[0].strip("[]") in self.names:
            return True
        if local is None or self.host not in WILDCARDS:
            return False
        local = local.lower().removeprefix("::ffff:") if "." in local else local.lower()  # IPv4 reaching `::`
        return host == f"{url_host(local)}:{self.port}"


def allowed_hosts(host: str, port: int, names: list[str] | tuple[str, ...] = ()) -> Allowed:
    return Allowed(host, port, frozenset(n.lower() for n in names))


def refusal(method: str, host: str | None, origin: str | None, allowed: Allowed, local: str | None = None) -> str | None:
    """Why a request is refused (answered 403), or None when it may go on."""
    if (host, local) not in allowed:
        return f"refused: Host {host!r} is not this server ({', '.join(sorted(allowed.own | allowed.names))})"
    if method.upper() not in SAFE_METHODS and origin is not None:
        origin_host = origin.lower().removeprefix("http://").removeprefix("https://")
        if origin_host == origin.lower() or (origin_host, local) not in allowed:
            return f"refused: a {method} request from another site ({origin})"
    return None


def guard_wsgi(app, allowed: Allowed):
    """`app` behind `refusal` (the local address comes from the server's request handler, as `hpsearch.local`)."""

    def guarded(environ, start_response):
        reason = refusal(environ["REQUEST_METHOD"], environ.get("HTTP_HOST"), environ.get("HTTP_ORIGIN"), allowed,
                         environ.get("hpsearch.local"))
        if reason is None:
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
        return [reason.encode()]

    return guarded
