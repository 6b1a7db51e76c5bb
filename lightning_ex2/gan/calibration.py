"""Compatibility alias of :mod:`lightning_ex2.modules.calibration`."""

from lightning_ex2.modules.calibration import (
    DiscriminatorCalibration,
    accuracy,
    fit_logistic_scale,
    log_loss,
)

__all__ = ["DiscriminatorCalibration", "accuracy", "fit_logistic_scale", "log_loss"]
