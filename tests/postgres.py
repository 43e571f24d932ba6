"""A real PostgreSQL server for the tests: initdb into a temporary folder, pg_ctl on a free loopback
port, password authentication; run as the `postgres` user when the tests run as root."""

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


@contextlib.contextmanager
def postgres_server():
    """Yields a function that makes a fresh database and returns its URL, without the password."""
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
    port, data = free_port(), folder / "data"

    def pg(*command):
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True)

    try:
        pg(initdb, "-D", data, "-U", USER, "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        pg(pg_ctl, "-D", data, "-o", options, "-l", folder / "log", "-w", "-t", "60", "start")
    except subprocess.CalledProcessError as err:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        missing(f"PostgreSQL did not start: {err.stderr.strip()} {log[-500:]}")
    names = iter(range(10**6))

    def new_database() -> str:
        import psycopg

        name = f"study{next(names)}"
        with psycopg.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{USER}@127.0.0.1:{port}/{name}"

    try:
        yield new_database
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
