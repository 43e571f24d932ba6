"""How a command ends: done, or the one line to show and its exit code. A module of its own, so that the CLI
and the `--jobs` workers know them without importing what raises them (torch takes seconds to import)."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Callable

from trainers.errors import InputError


class Stop(Exception):
    """The message is the one line to show."""

    code = 1


class SearchFailed(Stop):
    """Trials keep failing: the run stops rather than fail every trial it was asked for."""

    code = 1


class StorageLost(Stop):
    """The storage stayed unreachable for longer than a worker waits for it."""

    code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM: a scheduler preempting the job (Slurm's scancel, its time limit; a Kubernetes eviction) or
    `kill`. Everything stops as on Ctrl-C (the trial in progress is recorded as interrupted, its retry
    queued), then the process exits with 143 (128 + SIGTERM), as a process killed by it would."""


def _terminated(signum, frame):
    raise Terminated()


def exit_code(command: Callable[[], object], argv: list[str], continues: bool = False) -> int:
    """Run a command and say how it ended: 0 done, 1 the search failed (trials kept failing) or a bug in
    hpsearch, 2 bad input, 3 the storage was lost, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM. Bad
    input and every expected failure end as one line on stderr; anything else is a bug in hpsearch, not the
    user's mistake: its traceback, then a line saying so, with the version and the command to report (as
    pip and Optuna's CLI do). A command that `continues` a study (run) says how to go on after a stop."""
    again = "; run the same command again to continue the study" if continues else ""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        command()
        sys.stdout.flush()  # a reader that went away (`| head`) shows here, not as an error at exit
        return 0
    except InputError as err:
        print(f"hpsearch: error: {err}", file=sys.stderr)
        return 2
    except Stop as err:
        print(f"hpsearch: {err}", file=sys.stderr)
        return err.code
    except Terminated:
        print(f"\nhpsearch: stopped by SIGTERM{again}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"\nhpsearch: interrupted{again}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hpsearch spaces | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's advice: no error at exit either
        return 0
    except Exception:
        traceback.print_exc()
        print(f"hpsearch: this is a bug in hpsearch {_version()}, not a mistake of yours: please report it with the "
              f"traceback above and the command: {shlex.join(['hpsearch', *argv])}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _version() -> str:
    try:
        return importlib.metadata.version("hpsearch")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"
