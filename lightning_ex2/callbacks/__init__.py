"""Callbacks observe, never steer: progress, diagnostics, figures, image metrics, writers."""

from lightning_ex2.callbacks.diagnostics import ChainDiagnostics
from lightning_ex2.callbacks.fid import ImageQualityMetrics, TorchScriptInception, load_real_images
from lightning_ex2.callbacks.plots import (
    figure_to_array,
    save_figure,
    scatter_figure,
    trace_figure,
)
from lightning_ex2.callbacks.progress import SweepProgressBar
from lightning_ex2.callbacks.trajectory import (
    SamplingTrajectory,
    energy_landscape_figure,
    trajectory_grid,
)
from lightning_ex2.callbacks.writer import SampleWriter

__all__ = [
    "ChainDiagnostics",
    "ImageQualityMetrics",
    "SampleWriter",
    "SamplingTrajectory",
    "SweepProgressBar",
    "TorchScriptInception",
    "energy_landscape_figure",
    "figure_to_array",
    "load_real_images",
    "save_figure",
    "scatter_figure",
    "trace_figure",
    "trajectory_grid",
]
