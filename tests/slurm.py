"""A real one-node Slurm cluster for the tests: munged, slurmctld and slurmd from Debian's packages, started in
the foreground as root with a slurm.conf of our own in a temporary folder (free ports, process tracking by
/proc, no cgroups), and two GPUs declared as generic resources so that `--gres=gpu:1` is scheduled as on a
real cluster (Slurm sets each task's CUDA_VISIBLE_DEVICES; there are no devices behind them here)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from browser import free_port
from components import missing

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "mungekey")


class Cluster:
    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}

    def __call__(self, *command, check: bool = True) -> str:
        """A Slurm client command's output."""
        done = subprocess.run(list(map(str, command)), env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, command))} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def tasks(self, job: str) -> dict[str, str]:
        """The job's array tasks that are not over yet: task id -> state (PENDING, RUNNING, ...)."""
        lines = self("squeue", "-h", "-r", "-j", job, "-o", "%K %T", check=False).split()
        return dict(zip(lines[::2], lines[1::2]))

    def exit_code(self, job: str, task: str) -> str:
        shown = self("scontrol", "show", "job", f"{job}_{task}")
        return next(w.split("=")[1] for w in shown.split() if w.startswith("ExitCode="))

    def wait_until_done(self, job: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while self.tasks(job):
            assert time.monotonic() < deadline, f"job {job} still has {self.tasks(job)} after {timeout} s"
            time.sleep(1)

    def log(self) -> str:
        return "\n".join((self.folder / f"{d}.log").read_text()[-2000:] for d in DAEMONS if (self.folder / f"{d}.log").exists())


def _config(folder: Path, host: str) -> str:
    return f"""ClusterName=hpsearch
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmdParameters=config_overrides
KillWait=30
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


@contextlib.contextmanager
def slurm_cluster():
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") for name in DAEMONS + CLIENTS}
    if not all(found.values()):
        missing(f"Slurm not found ({', '.join(n for n, p in found.items() if not p)}): install Debian's slurmctld, slurmd, "
                f"slurm-client and munge")
    if os.geteuid() != 0:
        missing("the Slurm daemons of the tests run as root")
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-slurm-"))
    os.chmod(folder, 0o755)  # munged wants to reach its socket's folder; slurmd runs jobs from here
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    host = socket.gethostname()
    (folder / "slurm.conf").write_text(_config(folder, host))
    (folder / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\nNodeName={host} Name=gpu File=/dev/zero\n")
    subprocess.run([found["mungekey"], "--create", f"--keyfile={folder / 'munge.key'}"], check=True, capture_output=True)
    cluster, daemons = Cluster(folder), []
    commands = [
        [found["munged"], "--foreground", "--force", f"--key-file={folder / 'munge.key'}", f"--socket={folder / 'munge.socket'}",
         f"--pid-file={folder / 'munged.pid'}", f"--seed-file={folder / 'munged.seed'}", f"--log-file={folder / 'munged.log'}"],
        [found["slurmctld"], "-D", "-i", "-f", folder / "slurm.conf", "-L", folder / "slurmctld.log"],
        [found["slurmd"], "-D", "-f", folder / "slurm.conf", "-L", folder / "slurmd.log"],
    ]
    try:
        for command in commands:
            daemons.append(subprocess.Popen(list(map(str, command)), env=cluster.env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
            time.sleep(1)
        deadline = time.monotonic() + 120
        while cluster("sinfo", "-h", "-o", "%T", check=False).strip() not in ("idle", "mixed"):
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                missing(f"Slurm did not start: {cluster.log()}")
            time.sleep(1)
        yield cluster
    finally:
        cluster("scancel", "-u", "root", check=False) if daemons else None
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(folder, ignore_errors=True)
