"""Moved to :mod:`lightning_ex2.figures` (this name stays importable)."""

from lightning_ex2.figures import *  # noqa: F403
from lightning_ex2.figures import __all__  # noqa: F401
