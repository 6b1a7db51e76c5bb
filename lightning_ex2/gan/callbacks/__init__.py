"""Callbacks of GAN-latent samplers: image quality (FID, IS and the classifier scores) of the
decoded chains, and their trajectories."""

from lightning_ex2.gan.callbacks.fid import (
    ImageQualityMetrics,
    TorchScriptInception,
    load_real_images,
)
from lightning_ex2.gan.callbacks.trajectory import SamplingTrajectory

__all__ = ["ImageQualityMetrics", "SamplingTrajectory", "TorchScriptInception", "load_real_images"]
