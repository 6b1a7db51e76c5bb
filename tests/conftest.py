import math

import pytest
import torch
from scipy import stats


def z_quantile(p: float = 0.01, n_tests: int = 1) -> float:
    """Two-sided normal quantile at level ``p`` with a Bonferroni correction."""
    return float(stats.norm.ppf(1 - p / (2 * n_tests)))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(1234)
    yield


def mcse_z(draws: torch.Tensor, truth: torch.Tensor, ess) -> torch.Tensor:
    """|mean - truth| / (sd / sqrt(ESS)) per coordinate for draws ``[C, T, D]``."""
    flat = draws.reshape(-1, draws.shape[-1]).double()
    sd = flat.std(0)
    e = torch.as_tensor(ess(draws.detach().cpu().double().numpy()), dtype=torch.float64)
    return (flat.mean(0) - truth.double()).abs() / (sd / e.sqrt())


__all__ = ["math", "mcse_z", "z_quantile"]
