"""A real optuna-dashboard server and a real headless Chromium, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from components import missing

CHROMIUM = os.environ.get("HPSEARCH_CHROMIUM", "/usr/bin/chromium")
# Without the networking flags Chromium keeps calling Google's hosts, which a closed network refuses.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing(f"Chromium not found at {CHROMIUM}: install Debian's chromium package or set HPSEARCH_CHROMIUM")


@contextlib.contextmanager
def chromium():
    """A headless Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard(storage: str, cwd: Path, log: Path):
    """`hpsearch dashboard` on a free loopback port; yields its base URL once it answers."""
    port = free_port()
    command = [Path(sys.executable).parent / "hpsearch", "dashboard", "--storage", storage, "--port", str(port)]
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, server, log)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=120)


def _wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"hpsearch dashboard exited {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/studies", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"hpsearch dashboard did not answer at {url} within {timeout} s:\n{log.read_text()}")
