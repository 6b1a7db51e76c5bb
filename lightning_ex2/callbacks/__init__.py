"""Callbacks observe, never steer: progress, diagnostics, figures, sample writers."""

from lightning_ex2.callbacks.diagnostics import ChainDiagnostics
from lightning_ex2.callbacks.plots import (
    figure_to_array,
    save_figure,
    scatter_figure,
    trace_figure,
)
from lightning_ex2.callbacks.progress import SweepProgressBar
from lightning_ex2.callbacks.writer import SampleWriter

__all__ = [
    "ChainDiagnostics",
    "SampleWriter",
    "SweepProgressBar",
    "figure_to_array",
    "save_figure",
    "scatter_figure",
    "trace_figure",
]
