"""What a run leaves on disk: output sets (atomic writes, manifest, lock) in :mod:`.files`
and :mod:`.lock`, ArviZ/NetCDF in :mod:`.netcdf`, the pure writer of a finished run's set in
:mod:`.writer`, and figures in :mod:`.figures`. Framework-free: numpy, torch, matplotlib."""

import importlib
import importlib.util
from types import ModuleType

from lightning_ex2.output.files import OutputSet, load_output_set, read_manifest

__all__ = ["OutputSet", "load_output_set", "read_manifest"]


def __getattr__(name: str) -> ModuleType:
    """Every submodule is an attribute, imported on first use (``lx.lightning.cli``)."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
