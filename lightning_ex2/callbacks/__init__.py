"""Callbacks observe, never steer: progress, diagnostics, image metrics, trajectories, writers.

They are thin Lightning hooks around pure functions that live below them: figures in
:mod:`lightning_ex2.figures`, metrics and feature networks in :mod:`lightning_ex2.metrics`.
No callback calls another.
"""

from lightning_ex2.callbacks.diagnostics import ChainDiagnostics
from lightning_ex2.callbacks.fid import ImageQualityMetrics, TorchScriptInception, load_real_images
from lightning_ex2.callbacks.progress import SweepProgressBar
from lightning_ex2.callbacks.trajectory import SamplingTrajectory
from lightning_ex2.callbacks.writer import SampleWriter

__all__ = [
    "ChainDiagnostics",
    "ImageQualityMetrics",
    "SampleWriter",
    "SamplingTrajectory",
    "SweepProgressBar",
    "TorchScriptInception",
    "load_real_images",
]
