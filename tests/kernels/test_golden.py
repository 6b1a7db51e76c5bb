"""Draws pinned to main's (identity mass matrix): see ``tests/kernels/golden_draws.py``.

The kernels' parameters became NamedTuples, the Gaussian proposal was fused and
Ex2MCMC took a general local kernel; with the identity mass matrix and main's
constructor arguments (the GAN configs' form) none of that may change a draw.
"""

from __future__ import annotations

import pytest
import torch

from tests.kernels.golden_draws import PATH, run_all


@pytest.fixture(scope="module")
def current():
    torch.set_num_threads(1)
    return run_all()


@pytest.fixture(scope="module")
def recorded():
    return torch.load(PATH)


def test_every_case_is_pinned(current, recorded):
    assert set(current) == set(recorded)


@pytest.mark.parametrize("case", sorted(torch.load(PATH)))
def test_draws_equal_mains(current, recorded, case):
    for key, want in recorded[case].items():
        got = current[case][key]
        assert torch.equal(got, want), f"{case} {key}: max |diff| {(got - want).abs().max()}"
