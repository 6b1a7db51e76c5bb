"""What a run leaves on disk: output sets (atomic writes, manifest, lock) in :mod:`.files`
and :mod:`.lock`, ArviZ/NetCDF in :mod:`.netcdf`, the pure writer of a finished run's set in
:mod:`.writer`, and figures in :mod:`.figures`. Framework-free: numpy, torch, matplotlib."""

from lightning_ex2._lazy import lazy_getattr
from lightning_ex2.output.files import OutputSet, load_output_set, read_manifest

__all__ = ["OutputSet", "load_output_set", "read_manifest"]

__getattr__ = lazy_getattr(__name__, {})
