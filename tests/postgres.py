"""A real PostgreSQL server for the tests: initdb into a temporary folder, pg_ctl on a free loopback port, password
authentication; run as the `postgres` user when the tests run as root. It can be stopped and started again."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from browser import free_port
from components import missing

USER, PASSWORD = "hpsearch", "s3cret-pw"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Server:
    """Calling it makes a fresh database and returns its URL, without the password."""

    def __init__(self, folder: Path, as_user: list[str], pg_ctl: str, max_connections: int):
        self.folder, self.as_user, self.pg_ctl, self.max_connections = folder, as_user, pg_ctl, max_connections
        self.port, self.data = free_port(), folder / "data"
        self._names = iter(range(10**6))

    def pg(self, *command) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, text=True)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections={self.max_connections}")
        self.pg(self.pg_ctl, "-D", self.data, "-o", options, "-l", self.folder / "log", "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """fast: every connection is cut, as when the server is shut down or its machine lost."""
        self.pg(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "stop")

    def __call__(self) -> str:
        import psycopg

        name = f"study{next(self._names)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def postgres_server(max_connections: int = 300):
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        missing("PostgreSQL not found: install Debian's postgresql package")
    as_user = []
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text(PASSWORD)
    os.chmod(folder / "pw", 0o644)
    server = Server(folder, as_user, pg_ctl, max_connections)
    try:
        server.pg(initdb, "-D", server.data, "-U", USER, "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}", "--no-sync")
        server.start()
    except subprocess.CalledProcessError as err:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        missing(f"PostgreSQL did not start: {err.stderr.strip()} {log[-500:]}")
    try:
        yield server
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", server.data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
