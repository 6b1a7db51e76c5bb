"""The one table of kernels that drives the statistical kernel tests.

Each :class:`KernelCase` names a kernel configuration, builds it from a proposal (used by
the global kernels) and a step size (used by the local ones), and carries tags; a test
takes the kernels it applies to by tag, not from a hand-written list::

    @pytest.mark.parametrize("name", select(all_of={"exact", "global"}))

Tags:

* ``exact``: Metropolis-corrected, leaves the target invariant (ULA is not: it is biased);
* ``gradient``: uses the target's gradient;
* ``global``: draws from a proposal (i-SIR and Ex2MCMC);
* ``dependent``: correlated (dependent) proposals;
* ``diagonal``: a diagonal mass matrix, adapted in the warm-up;
* ``variant``: a parameter variant (mass matrix, a local kernel other than MALA), checked
  by ``test_params.py`` rather than by the base tests of ``test_kernels.py``.

A case may also carry ``smoke(dim)``: a cheap configuration for the mechanical tests of
the API and the Lightning module (shapes, seeds, non-finite counts: ``tests/test_sampling.py``,
``tests/lightning/test_module.py``), which take the cases that have one (:func:`smoke_cases`).

The targets the kernel tests share (a correlated 3-D Gaussian) live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Gaussian

TAGS = frozenset({"exact", "gradient", "global", "dependent", "diagonal", "variant"})

MEAN = torch.tensor([1.0, -1.0, 0.5])
COV = torch.tensor([[1.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 0.5]])


def gaussian_target() -> Gaussian:
    return Gaussian(MEAN, COV)


@dataclass(frozen=True)
class KernelCase:
    """A kernel configuration: ``build(proposal, step_size)``, its tags, and optionally a
    cheap ``smoke(dim)`` configuration for the mechanical tests."""

    name: str
    build: Callable[[nn.Module, float], lx.kernels.Kernel]
    tags: frozenset[str]
    smoke: Callable[[int], lx.kernels.Kernel] | None = None

    def __post_init__(self) -> None:
        unknown = self.tags - TAGS
        if unknown:
            raise ValueError(f"{self.name}: unknown tags {sorted(unknown)}")


#: one shared step size and the identity metric (MALA's and HMC's defaults are per-chain
#: step sizes and a diagonal metric: the ``diagonal`` cases)
PLAIN = {"per_chain_step_size": False, "mass_matrix": "identity"}


def _case(name: str, build, *tags: str, smoke=None) -> KernelCase:
    return KernelCase(name, build, frozenset(tags), smoke)


CASES: list[KernelCase] = [
    _case(
        "mala",
        lambda q, h: lx.MALA(h, target_accept=0.574, **PLAIN),
        "exact",
        "gradient",
        smoke=lambda d: lx.MALA(0.1, target_accept=0.574, **PLAIN),
    ),
    _case(
        "hmc",
        lambda q, h: lx.HMC(h, n_leapfrog=5, target_accept=0.7, jitter=0.3, **PLAIN),
        "exact",
        "gradient",
        smoke=lambda d: lx.HMC(0.1, n_leapfrog=3, target_accept=0.7, **PLAIN),
    ),
    _case(
        "isir",
        lambda q, h: lx.ISIR(q, n_particles=20),
        "exact",
        "global",
        smoke=lambda d: lx.ISIR(GaussianProposal(d, scale=2.0), n_particles=8),
    ),
    _case(
        "ex2mcmc",
        lambda q, h: lx.Ex2MCMC(q, n_particles=20, step_size=h, n_local_steps=2),
        "exact",
        "gradient",
        "global",
        smoke=lambda d: lx.Ex2MCMC(GaussianProposal(d, scale=2.0), 8, 0.1, n_local_steps=2),
    ),
    _case(
        "ex2mcmc_dependent",
        lambda q, h: lx.Ex2MCMC(
            q, n_particles=20, step_size=h, correlation=0.9, correlation_prob=0.5
        ),
        "exact",
        "gradient",
        "global",
        "dependent",
    ),
    _case("ula", lambda q, h: lx.ULA(step_size=h), "gradient", smoke=lambda d: lx.ULA(0.05)),
    _case(
        "mala_diag",
        lambda q, h: lx.MALA(h, target_accept=0.574, mass_matrix="diagonal"),
        "exact",
        "gradient",
        "diagonal",
        "variant",
    ),
    _case(
        "hmc_diag",
        lambda q, h: lx.HMC(h, 5, target_accept=0.7, jitter=0.3, mass_matrix="diagonal"),
        "exact",
        "gradient",
        "diagonal",
        "variant",
    ),
    _case(
        "ex2mcmc_hmc",
        lambda q, h: lx.Ex2MCMC(q, 20, local_kernel=lx.HMC(h, 3, target_accept=0.7, **PLAIN)),
        "exact",
        "gradient",
        "global",
        "variant",
    ),
    _case(
        "ex2mcmc_hmc_diag",
        lambda q, h: lx.Ex2MCMC(
            q, 20, local_kernel=lx.HMC(h, 3, target_accept=0.7, mass_matrix="diagonal")
        ),
        "exact",
        "gradient",
        "global",
        "diagonal",
        "variant",
    ),
    _case(
        "ex2mcmc_hmc_dependent",
        lambda q, h: lx.Ex2MCMC(
            q,
            20,
            local_kernel=lx.HMC(h, 3, target_accept=0.7, **PLAIN),
            correlation=0.9,
            correlation_prob=0.5,
        ),
        "exact",
        "gradient",
        "global",
        "dependent",
        "variant",
    ),
]

BY_NAME: dict[str, KernelCase] = {c.name: c for c in CASES}


def select(all_of: Collection[str] = (), none_of: Collection[str] = ()) -> list[str]:
    """Names of the cases that carry every tag of ``all_of`` and none of ``none_of``."""
    for tag in (*all_of, *none_of):
        if tag not in TAGS:
            raise ValueError(f"unknown tag {tag!r}")
    return [c.name for c in CASES if c.tags >= set(all_of) and not c.tags & set(none_of)]


def smoke_cases() -> list[str]:
    """Names of the cases with a ``smoke`` configuration, sorted."""
    return sorted(c.name for c in CASES if c.smoke is not None)


def build(name: str, proposal: nn.Module, step_size: float) -> lx.kernels.Kernel:
    """The kernel of case ``name`` with ``proposal`` and ``step_size``."""
    return BY_NAME[name].build(proposal, step_size)


def make_kernel(name: str, dim: int = 3) -> lx.kernels.Kernel:
    """The configuration of the moment tests: N(0, 3^2 I) proposal, step size 0.3."""
    return build(name, GaussianProposal(dim, loc=0.0, scale=3.0), 0.3)
