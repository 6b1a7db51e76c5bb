"""posteriordb ports in float64 and float32: shapes, dtypes, finite values and gradients
(the comparison with Stan itself is in ``test_posteriordb.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_ex2.targets import posteriordb as pdb

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "posteriordb"

PORTS = {  # posterior name -> unconstrained dimension
    "mcycle_gp-accel_gp": 66,
    "gp_pois_regr-gp_pois_regr": 13,
    "gp_pois_regr-gp_regr": 3,
    "arma-arma11": 4,
    "hmm_example-hmm_example": 4,
    "nes2000-nes": 10,
    "sblrc-blr": 6,
    "kidiq_with_mom_work-kidscore_interaction_c": 5,
    "earnings-logearn_interaction_z": 5,
    "mesquite-logmesquite_logvash": 7,
}


@pytest.fixture(scope="module", params=sorted(PORTS))
def name(request) -> str:
    return request.param


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_shape_dtype_and_finite_at_zero(name: str, dtype: torch.dtype) -> None:
    target = pdb.load(name, FIXTURE, dtype=dtype)
    assert target.dim == PORTS[name]
    x = 0.3 * torch.randn(3, 5, target.dim, dtype=dtype)
    lp = target.log_prob(x)
    assert lp.shape == (3, 5) and lp.dtype == dtype
    zero = torch.zeros(target.dim, dtype=dtype, requires_grad=True)
    lp0 = target.log_prob(zero)
    (grad,) = torch.autograd.grad(lp0, zero)
    assert lp0.shape == () and torch.isfinite(lp0) and torch.isfinite(grad).all()


def test_gp_float32_near_the_posterior() -> None:
    """The GP's covariance (jitter 1e-10) is factored in float64: a float32 target stays
    finite and close to float64 at a typical posterior point (rho ~ 6, alpha ~ 1.5)."""
    x = torch.cat([torch.tensor([6.0, 1.5]).log(), 0.5 * torch.randn(11)])
    lp = {}
    for dtype in (torch.float64, torch.float32):
        target = pdb.load("gp_pois_regr-gp_pois_regr", FIXTURE, dtype=dtype)
        xd = x.to(dtype).requires_grad_(True)
        lp[dtype] = target.log_prob(xd)
        (grad,) = torch.autograd.grad(lp[dtype], xd)
        assert torch.isfinite(lp[dtype]) and torch.isfinite(grad).all()
    assert abs(lp[torch.float32].item() - lp[torch.float64].item()) < 1e-3
