"""How many threads a trial on the CPU takes: the cores that other work leaves free, shared among this machine's
trials, looked at when each trial starts.

Why: OpenMP's threads that spin while they wait (fast alone) slow a trial beside another process's busy threads
several times over, and threads that sleep while they wait (steady beside a load) slow it alone by about half
(benchmarks/shared_cpu.py, figures in the README's "Measured"). `hpsearch` lets them spin briefly
(GOMP_SPINCOUNT, search.cli), and a trial that starts beside other work takes only the cores left to it: one
thread has no one to wait for."""

from __future__ import annotations

import os
import time

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
WINDOW_S = 0.2  # how long the machine's load is looked at: a few scheduler ticks on every core


def busy_elsewhere(window: float = WINDOW_S) -> float:
    """The cores that other processes kept busy over the next `window` seconds (0 where /proc is not there)."""
    try:
        machine, mine = _machine_ticks(), _own_ticks()
        time.sleep(window)
        (busy, total), own = _machine_ticks(), _own_ticks()
    except OSError:
        return 0.0
    cores = os.cpu_count() or 1
    elapsed = max(total - machine[1], 1)
    return max(0.0, (busy - machine[0] - (own - mine)) / elapsed * cores)


def trial_threads(trials_here: int) -> int:
    """Threads for a trial that starts now, beside `trials_here - 1` other trials of this machine's workers."""
    share = CORES // max(1, trials_here)
    if share <= 1:  # one thread whatever else runs: no need to look
        return 1
    return max(1, min(share, CORES - round(busy_elsewhere())))


def _machine_ticks() -> tuple[int, int]:
    """Busy and all clock ticks of every core since boot (/proc/stat's first line)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]  # user .. steal (guest time is in user already)
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle and waiting for I/O
    return sum(values) - idle, sum(values)


def _own_ticks() -> int:
    """This process's CPU ticks (all its threads; /proc/self/stat's utime and stime)."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
