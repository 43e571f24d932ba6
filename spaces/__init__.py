"""Search spaces: one small file each, registered by name (spaces.registry). A space says what data it trains on,
how images are prepared, and which hyperparameters the search may choose (spaces.space). A user's own space
file does `from spaces import Space, register`. Adding a built-in space: a file here, and its import below."""

from spaces import checkbox, digits, drillbit, localize, ovr, steel  # noqa: F401  (importing a space registers it)
from spaces.registry import get_space, list_spaces, register
from spaces.space import Space

__all__ = ["Space", "get_space", "list_spaces", "register"]
