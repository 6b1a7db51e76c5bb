"""Every kernel's short float64 runs against their recording (``tests/kernels/golden_draws.py``).

A regression test of the kernels' arithmetic: a refactor (parameters as NamedTuples, the
fused Gaussian proposal, Ex2MCMC over any local kernel, ...) must not change a draw, an
acceptance probability or an adapted step size beyond :data:`RTOL`. The runs are in
float64, so a CPU with other vector instructions (or ``ATEN_CPU_CAPABILITY``, ``MKL_CBWR``,
the thread count) moves them by ~1e-12 at most, far inside the tolerance, while a changed
term of a kernel (the reverse proposal density, the leapfrog's half step, the i-SIR
weights) moves them by orders of magnitude more.
"""

from __future__ import annotations

import os

import pytest
import torch

from tests.kernels.golden_draws import ATOL, PATH, RTOL, names, run


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(PATH, weights_only=True)


def test_every_case_is_recorded_in_float64(recorded) -> None:
    assert sorted(recorded) == sorted(names())
    for case, values in recorded.items():
        assert {"samples", "log_prob"} <= set(values) or case.startswith("module/"), case
        assert all(v.dtype == torch.float64 for v in values.values()), case


@pytest.mark.parametrize("case", names())
def test_draws_match_the_recording(recorded, case: str) -> None:
    current = run(case)
    assert sorted(current) == sorted(recorded[case])
    for key, want in recorded[case].items():
        torch.testing.assert_close(
            current[key], want, rtol=RTOL, atol=ATOL, msg=lambda m, k=key: f"{case} {k}: {m}"
        )


def test_the_requested_cpu_capability_is_the_one_in_use() -> None:
    """``make test-portable`` runs these tests under ``ATEN_CPU_CAPABILITY=default``; torch must
    honour it, or that run would silently repeat the first one."""
    wanted = os.environ.get("ATEN_CPU_CAPABILITY")
    if not wanted:
        pytest.skip("ATEN_CPU_CAPABILITY is not set: the CPU's best kernels are in use")
    assert torch.backends.cpu.get_cpu_capability().lower() == wanted.lower()
