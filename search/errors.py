"""How a command ends when it cannot do its work, beside bad input (a ValueError: exit code 2): each with
the one line to show and its exit code. A module of its own, so that the CLI knows them without
importing what raises them (torch takes seconds to import)."""


class Stop(Exception):
    """The message is the one line to show."""

    code = 1


class SearchFailed(Stop):
    """Trials keep failing: the run stops rather than fail every trial it was asked for."""

    code = 1


class StorageLost(Stop):
    """The storage stayed unreachable for longer than a worker waits for it."""

    code = 3
