"""Short seeded runs of every kernel with the identity mass matrix, pinned to main's draws.

``python tests/kernels/golden_draws.py record`` writes ``tests/fixtures/golden_draws.pt`` (it was
recorded on main at eea77fa, before kernel parameters became NamedTuples, the
proposal was fused and Ex2MCMC took any local kernel); ``tests/kernels/test_golden.py``
checks that the current code reproduces those draws bit for bit. The cases use
only the constructor arguments main had, so the GAN configs (identity mass
matrix) keep their draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.proposals import GaussianProposal

PATH = Path(__file__).resolve().parents[1] / "fixtures" / "golden_draws.pt"
DIM = 20


class AutogradFunnel(nn.Module):
    """The funnel through autograd only (as a GAN latent target is)."""

    dim = DIM

    def __init__(self) -> None:
        super().__init__()
        self.inner = lx.targets.Funnel(DIM)

    def log_prob(self, x):  # type: ignore[no-untyped-def]
        return self.inner.log_prob(x)


def cases() -> dict[str, tuple]:
    q = GaussianProposal(DIM, scale=3.0)
    return {
        "ula": (lx.ULA(0.01), 16, 30, 0),
        "mala": (lx.MALA(0.05, target_accept=0.574), 16, 30, 20),
        "mala_per_chain": (lx.MALA(0.05, target_accept=0.574, per_chain_step_size=True), 8, 20, 20),
        "hmc": (lx.HMC(0.05, n_leapfrog=4, target_accept=0.7), 16, 20, 20),
        "isir": (lx.ISIR(q, n_particles=128), 32, 15, 0),
        "ex2mcmc": (lx.Ex2MCMC(q, 128, 0.05, n_local_steps=3, target_accept=0.574), 32, 15, 10),
        "ex2mcmc_dependent": (
            lx.Ex2MCMC(q, 64, 0.05, n_local_steps=1, correlation=0.9, correlation_prob=0.5),
            16,
            15,
            0,
        ),
    }


def run_all() -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for name, (kernel, n_chains, n_steps, burn_in) in cases().items():
        for tname, target in (("closed", lx.targets.Funnel(DIM)), ("autograd", AutogradFunnel())):
            run = lx.sample(
                target, kernel, n_chains=n_chains, n_steps=n_steps, burn_in=burn_in, seed=7,
                progress=False,
            )  # fmt: skip
            step = run.info.get("step_size")
            out[f"{name}/{tname}"] = {
                "samples": run.samples.clone(),
                **({} if step is None else {"step_size": step.clone()}),
            }
    out["module/ex2mcmc"] = run_module()
    return out


def run_module() -> dict[str, torch.Tensor]:
    """``fit`` (adaptation) then ``predict`` (the ``sample`` command) of an MCMCSampler."""
    from lightning_ex2.data import ChainDataModule
    from lightning_ex2.modules import MCMCSampler
    from lightning_ex2.trainer import Ex2Trainer

    kernel = lx.Ex2MCMC(GaussianProposal(DIM, scale=3.0), 64, 0.05, 2, target_accept=0.574)
    model = MCMCSampler(AutogradFunnel(), kernel, n_chains=16, adapt_epochs=6, seed=3)
    model.sampling.n_steps, model.sampling.progress = 8, False
    kw = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    dm = ChainDataModule(n_chains=16, chains_per_batch=8)
    Ex2Trainer(max_epochs=8, **kw).fit(model, datamodule=dm)
    outs = Ex2Trainer(**kw).predict(model, datamodule=dm)
    return {
        "samples": torch.cat([o["samples"] for o in outs]),
        "step_size": model.step_size.clone(),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1:] == ["record"]:
        PATH.parent.mkdir(exist_ok=True)
        torch.save(run_all(), PATH)
        print(f"wrote {PATH}")
