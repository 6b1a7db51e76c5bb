"""The package's version (``pyproject.toml`` says the same), apart from ``__init__`` so that a
module of the package can stamp it without importing the package root (no import cycle)."""

__version__ = "0.1.0"
