"""Callbacks observe, never steer: chain diagnostics, the sweep progress bar, the writer of
output sets. Thin Lightning hooks around pure functions of the core (figures in
:mod:`lightning_ex2.output.figures`, ESS and R-hat in :mod:`lightning_ex2.diagnostics`).
No callback calls another.
"""

from lightning_ex2.lightning.callbacks.diagnostics import ChainDiagnostics
from lightning_ex2.lightning.callbacks.progress import SweepProgressBar
from lightning_ex2.lightning.callbacks.writer import SampleWriter

__all__ = ["ChainDiagnostics", "SampleWriter", "SweepProgressBar"]
