"""What using the winner costs: `hpsearch serve` answering POST /predict of one image, with 1 and with 8
concurrent clients, for the best single model and the ensemble of the 5 best (requests per second, p50 and
p95 latency), a 100 MB upload refused (seconds to the 413 and the server's resident memory before and
after), and `hpsearch predict` on a folder (images per second). Real server processes on loopback ports,
real HTTP clients with persistent connections.

    python benchmarks/serve.py [--storage sqlite:///studies.db] [--study checkbox] [--requests 300] [--device cpu]

Without --storage it first runs a small checkbox study (8 trials of 3 epochs, the weights of 5 kept) in a
temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HPSEARCH = Path(sys.executable).parent / "hpsearch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def client(port: int, images: list[Path], count: int, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(count):
        body, kind = multipart(images[i % len(images)])
        start = time.perf_counter()
        connection.request("POST", "/predict", body, {"Content-Type": kind})
        answer = connection.getresponse()
        answer.read()
        latencies.append(time.perf_counter() - start)
        assert answer.status == 200, answer.status


def load(port: int, images: list[Path], clients: int, requests: int) -> str:
    client(port, images, 10, [])  # warm
    latencies: list[float] = []
    threads = [threading.Thread(target=client, args=(port, images, requests // clients, latencies)) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    ms = sorted(1000 * v for v in latencies)
    return (f"{clients} client(s): {len(ms) / seconds:7.1f} requests/s, p50 {statistics.median(ms):6.1f} ms, "
            f"p95 {ms[int(0.95 * (len(ms) - 1))]:6.1f} ms")


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def refuse_100_mb(port: int, pid: int) -> str:
    before = rss_mb(pid)
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                  f"Content-Length: {100 * 2**20}\r\n\r\n".encode())
        sender = threading.Thread(target=lambda: _send_quietly(s, 100 * 2**20))
        sender.start()
        status = s.recv(4096).decode(errors="replace").splitlines()[0]
        seconds = time.perf_counter() - start
        sender.join()
    return f"100 MB upload: '{status}' after {seconds * 1000:.1f} ms; server memory {before:.0f} MB before, {rss_mb(pid):.0f} MB after"


def _send_quietly(s: socket.socket, size: int) -> None:
    chunk = bytes(2**20)
    try:
        for _ in range(size // len(chunk)):
            s.sendall(chunk)
    except OSError:  # the server answered and closed: nothing more is read
        pass


def serve(args, ensemble: int, images: list[Path], cwd: Path) -> None:
    port = free_port()
    server = subprocess.Popen([str(HPSEARCH), "serve", "--storage", args.storage, "--study", args.study, "--port", str(port),
                               "--ensemble", str(ensemble), "--device", args.device], cwd=cwd, stdout=subprocess.PIPE, text=True)
    try:
        print(server.stdout.readline().strip())
        name = "best single model" if ensemble == 1 else f"ensemble of {ensemble}"
        for clients in (1, 8):
            print(f"  {name:18s} {load(port, images, clients, args.requests)}")
        if ensemble == 1:
            print(f"  {refuse_100_mb(port, server.pid)}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", help="a storage holding a finished study (default: make a small checkbox study)")
    parser.add_argument("--study", default="checkbox")
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-serve-bench-"))
    if args.storage is None:
        args.storage = f"sqlite:///{folder / 'studies.db'}"
        subprocess.run([str(HPSEARCH), "run", "--space", "checkbox", "--trials", "8", "--epochs", "3", "--storage", args.storage,
                        "--quiet", "--device", args.device], check=True, cwd=folder, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from trainers.datasets import builtin_path

    images = sorted(p for p in builtin_path("checkbox").rglob("*.png"))
    print(f"{os.cpu_count()} CPU cores; device {args.device}; {len(images)} checkbox images")
    for ensemble in (1, 5):
        serve(args, ensemble, images[:64], folder)
    for ensemble in (1, 5):
        out = subprocess.run([str(HPSEARCH), "predict", *map(str, images), "--storage", args.storage, "--study", args.study,
                              "--ensemble", str(ensemble), "--out", str(folder / "p.csv"), "--device", args.device],
                             capture_output=True, text=True, check=True, cwd=folder).stdout.strip().splitlines()[-1]
        print(f"hpsearch predict, {len(images)} files: {out}")


if __name__ == "__main__":
    main()
