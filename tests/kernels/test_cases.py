"""The kernel table's tags say what each built kernel is, so a selection by tag cannot lie."""

from __future__ import annotations

import pytest

import lightning_ex2 as lx
from lightning_ex2.proposals import GaussianProposal
from tests.kernels.cases import BY_NAME, CASES, KernelCase, select, smoke_cases


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_tags_match_the_built_kernel(name):
    case = BY_NAME[name]
    kernel = case.build(GaussianProposal(3, scale=3.0), 0.3)
    assert kernel.uses_grad == ("gradient" in case.tags)
    assert isinstance(kernel, lx.ISIR | lx.Ex2MCMC) == ("global" in case.tags)
    assert isinstance(kernel, lx.ULA) == ("exact" not in case.tags)  # ULA: the biased one
    isir = kernel.isir if isinstance(kernel, lx.Ex2MCMC) else kernel
    dependent = isinstance(isir, lx.ISIR) and isir.correlation > 0
    assert dependent == ("dependent" in case.tags)
    local = kernel.local_kernel if isinstance(kernel, lx.Ex2MCMC) else kernel
    assert (local.mass_matrix == "diagonal") == ("diagonal" in case.tags)
    variant = "diagonal" in case.tags or (isinstance(local, lx.HMC) and local is not kernel)
    assert variant == ("variant" in case.tags)
    if case.smoke is not None:
        assert type(case.smoke(2)) is type(kernel)


def test_selections_and_unknown_tags():
    assert select(all_of={"exact"}, none_of={"variant"}) == [
        "mala", "hmc", "isir", "ex2mcmc", "ex2mcmc_dependent",
    ]  # fmt: skip
    assert select(all_of={"global"}, none_of={"variant"}) == [
        "isir",
        "ex2mcmc",
        "ex2mcmc_dependent",
    ]
    assert smoke_cases() == ["ex2mcmc", "hmc", "isir", "mala", "ula"]
    with pytest.raises(ValueError, match="unknown tag 'exakt'"):
        select(all_of={"exakt"})
    with pytest.raises(ValueError, match="unknown tags"):
        KernelCase("x", lambda q, h: lx.ULA(h), frozenset({"fast"}))
