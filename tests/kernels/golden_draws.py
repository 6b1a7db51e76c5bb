"""Short seeded float64 runs of every kernel, recorded as the kernels' regression fixture.

``python tests/kernels/golden_draws.py record`` writes ``tests/fixtures/golden_draws.pt``;
``tests/kernels/test_golden.py`` runs the same cases and compares them with it at
:data:`RTOL`. Only a deliberate change of what a kernel computes should need a new
recording.

Each case records, per chain and per draw, the draws, their ``log pi``, the per-step
info (acceptance probabilities, i-SIR's particle ESS) and the step size the warm-up
adapted. The acceptance probabilities expose a changed Metropolis-Hastings ratio even
where no accept/reject decision flips; the draws and step sizes expose a changed move.

Why float64 and a tolerance, not bit-for-bit float32 draws: vectorised arithmetic
(FMA contraction, AVX2 vs AVX-512 vs scalar code paths, MKL's and oneDNN's dispatch)
differs in the last bits from one CPU to another. In float32 those differences reach
1e-6, enough to flip an accept/reject decision or an i-SIR selection once in a few
thousand, after which a chain's draws differ entirely. In float64 they start near
1e-16 and stay far below :data:`RTOL` over these few steps, and a flip needs a
log-ratio within ~1e-13 of its uniform draw (probability ~1e-12 per decision).

The cases are the kernels' shipped forms on a 20-D funnel (closed-form gradient and
autograd; MALA's and HMC's default ``mass_matrix="auto"`` is dense there), a few
diagonal-mass-matrix and HMC-local variants, and the Lightning module's ``fit`` then
``predict`` (at 64-bit precision). The cases that existed at
commit eea77fa (all but ``*_diag`` and ``ex2mcmc_hmc``; that code has no per-draw info)
gave the recorded draws, log-densities and step sizes bit for bit on the recording
machine: the regression fixture carries on the float32 one it replaced.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.proposals import GaussianProposal

PATH = Path(__file__).resolve().parents[1] / "fixtures" / "golden_draws.pt"
DIM = 20
#: relative tolerance of the comparison (float64 runs; see the module docstring)
RTOL = 1e-6
#: absolute floor for values near 0 (draws of scale ~1, probabilities in [0, 1])
ATOL = 1e-9
#: per-draw info recorded (when the kernel reports it)
DRAW_INFO = ("accept_local", "accept_global", "particle_ess", "step_size")


class AutogradFunnel(nn.Module):
    """The funnel through autograd only (as a GAN latent target is)."""

    dim = DIM

    def __init__(self) -> None:
        super().__init__()
        self.inner = lx.targets.Funnel(DIM)

    def log_prob(self, x):  # type: ignore[no-untyped-def]
        return self.inner.log_prob(x)


def cases() -> dict[str, tuple]:
    """``name -> (kernel, n_chains, n_steps, burn_in)``."""
    q = GaussianProposal(DIM, scale=3.0)
    return {
        "ula": (lx.ULA(0.01), 16, 30, 0),
        "mala": (lx.MALA(0.05, target_accept=0.574), 16, 30, 20),
        "mala_per_chain": (lx.MALA(0.05, target_accept=0.574, per_chain_step_size=True), 8, 20, 20),
        "mala_diag": (lx.MALA(0.05, target_accept=0.574, mass_matrix="diagonal"), 16, 20, 30),
        "hmc": (lx.HMC(0.05, n_leapfrog=4, target_accept=0.7), 16, 20, 20),
        # 20 warm-up steps: one mass-matrix window (longer, HMC's trajectories in the
        # funnel's neck amplify last-bit differences past RTOL)
        "hmc_diag": (lx.HMC(0.05, 4, target_accept=0.7, mass_matrix="diagonal"), 16, 10, 20),
        "isir": (lx.ISIR(q, n_particles=128), 32, 15, 0),
        "ex2mcmc": (lx.Ex2MCMC(q, 128, 0.05, n_local_steps=3, target_accept=0.574), 32, 15, 10),
        "ex2mcmc_dependent": (
            lx.Ex2MCMC(q, 64, 0.05, n_local_steps=1, correlation=0.9, correlation_prob=0.5),
            16,
            15,
            0,
        ),
        "ex2mcmc_hmc": (
            lx.Ex2MCMC(q, 64, local_kernel=lx.HMC(0.05, 3, target_accept=0.7)), 16, 15, 10
        ),
    }  # fmt: skip


def targets() -> dict[str, nn.Module]:
    return {"closed": lx.targets.Funnel(DIM).double(), "autograd": AutogradFunnel().double()}


def run_case(name: str, target_name: str) -> dict[str, torch.Tensor]:
    kernel, n_chains, n_steps, burn_in = cases()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # short runs: "not converged"
        run = lx.sample(
            targets()[target_name], kernel, n_chains=n_chains, n_steps=n_steps,
            burn_in=burn_in, seed=7, progress=False,
        )  # fmt: skip
    assert run.samples.dtype == torch.float64
    out = {"samples": run.samples.clone(), "log_prob": run.log_prob.clone()}
    out |= {f"draw/{k}": run.draw_info[k].clone() for k in DRAW_INFO if k in run.draw_info}
    if "step_size" in run.info:
        out["step_size"] = run.info["step_size"].clone()
    return out


def run_module() -> dict[str, torch.Tensor]:
    """``fit`` (adaptation) then ``predict`` (the ``sample`` command) of an MCMCSampler."""
    from lightning_ex2.lightning import ChainDataModule, MCMCSampler
    from lightning_ex2.lightning.trainer import Ex2Trainer

    kernel = lx.Ex2MCMC(GaussianProposal(DIM, scale=3.0), 64, 0.05, 2, target_accept=0.574)
    kw = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, precision="64-true",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = MCMCSampler(AutogradFunnel(), kernel, n_chains=16, adapt_epochs=6, seed=3)
        model.sampling.n_steps, model.sampling.progress = 8, False
        dm = ChainDataModule(n_chains=16, chains_per_batch=8)
        Ex2Trainer(max_epochs=8, **kw).fit(model, datamodule=dm)
        outs = Ex2Trainer(**kw).predict(model, datamodule=dm)
    samples = torch.cat([o["samples"] for o in outs])
    assert samples.dtype == torch.float64
    return {"samples": samples, "step_size": model.step_size.clone()}


def names() -> list[str]:
    """Every case's name: ``<kernel>/<target>`` and ``module/ex2mcmc``."""
    return [f"{k}/{t}" for k in cases() for t in targets()] + ["module/ex2mcmc"]


def run(name: str) -> dict[str, torch.Tensor]:
    if name == "module/ex2mcmc":
        return run_module()
    kernel_name, target_name = name.split("/")
    return run_case(kernel_name, target_name)


def run_all() -> dict[str, dict[str, torch.Tensor]]:
    return {name: run(name) for name in names()}


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1:] == ["record"]:
        PATH.parent.mkdir(exist_ok=True)
        torch.save(run_all(), PATH)
        print(f"wrote {PATH}")
    else:
        sys.exit(f"usage: python {Path(__file__).name} record")
