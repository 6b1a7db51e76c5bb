"""The LightningModules: FlEx2MCMC / MCMCSampler training, sampling and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

import lightning_ex2 as lx
from lightning_ex2.diagnostics import emd
from lightning_ex2.lightning import ChainDataModule, FlEx2MCMC, MCMCSampler
from lightning_ex2.lightning.trainer import Ex2Trainer
from lightning_ex2.proposals import FlowProposal, GaussianProposal
from lightning_ex2.targets import Gaussian, GridMixture
from tests.kernels.cases import BY_NAME, smoke_cases


def _trainer(tmp_path, **kwargs) -> Ex2Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    return Ex2Trainer(**{**defaults, **kwargs})


def _flex(dim=2, n_chains=16, seed=0, **kwargs) -> FlEx2MCMC:
    torch.manual_seed(seed)  # the flow's initial weights
    target = Gaussian(torch.tensor([1.0, -1.0])[:dim], torch.eye(dim))
    proposal = FlowProposal(dim, flow="realnvp", n_blocks=2, hidden_features=16, scale=3.0)
    kernel = lx.Ex2MCMC(
        proposal, n_particles=8, step_size=0.3, n_local_steps=1, target_accept=0.574
    )
    return FlEx2MCMC(target, kernel, n_chains=n_chains, seed=seed, **kwargs)


def test_fit_moves_chains_trains_flow_and_freezes(tmp_path):
    model = _flex(backward_kl_weight=0.5)
    before = [p.detach().clone() for p in model.proposal.parameters()]
    trainer = _trainer(tmp_path, max_steps=15)
    trainer.fit(model, datamodule=ChainDataModule(n_chains=16))
    assert trainer.global_step == 15
    assert bool(model.chain_ready.all())
    torch.testing.assert_close(model.chain_log_prob, model.target.log_prob(model.chain_x))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.proposal.parameters()))
    assert bool(model.tuning.frozen)  # step size frozen at the end of fit
    torch.testing.assert_close(model.step_size, model.tuning.da.log_step_avg.exp())


def test_flow_stops_training_after_flow_train_epochs(tmp_path):
    model = _flex(flow_train_epochs=5)
    trainer = _trainer(tmp_path, max_steps=5)
    trainer.fit(model, datamodule=ChainDataModule(n_chains=16))
    after5 = [p.detach().clone() for p in model.proposal.parameters()]
    trainer = _trainer(tmp_path, max_steps=10)
    model2 = _flex(flow_train_epochs=5)
    trainer.fit(model2, datamodule=ChainDataModule(n_chains=16))
    assert trainer.global_step == 10  # moves still counted without optimizer steps
    for a, b in zip(after5, model2.proposal.parameters()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kernel", smoke_cases())
def test_mcmc_sampler_runs_any_kernel(tmp_path, kernel):
    target = Gaussian(torch.zeros(3), torch.eye(3))
    k = BY_NAME[kernel].smoke(3)  # the kernel table's cheap configuration
    model = MCMCSampler(target, k, n_chains=8)
    trainer = _trainer(tmp_path, max_epochs=6)
    dm = ChainDataModule(n_chains=8, chains_per_batch=4)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 12  # 2 blocks x 6 sweeps
    summary = trainer.sample(
        model, datamodule=dm, n_steps=20, thin=2, output_dir=str(tmp_path / "out"), progress=False
    )
    data = np.load(tmp_path / "out" / "samples.npz")
    assert data["samples"].shape == (8, 10, 3)
    assert list(data["chain_index"]) == list(range(8))
    assert summary["n_chains"] == 8 and summary["n_draws"] == 10
    assert np.isfinite(summary["ess_bulk_mean"])


def test_sample_writes_outputs_atomically(tmp_path):
    model = _flex()
    dm = ChainDataModule(n_chains=16)
    trainer = _trainer(tmp_path, max_steps=5)
    trainer.fit(model, datamodule=dm)
    out = tmp_path / "samples"
    summary = trainer.sample(model, datamodule=dm, n_steps=30, output_dir=str(out), progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "manifest.json", "pair.png", "rank.png", "samples.nc", "samples.npz", "scatter.png",
        "summary.json", "trace.png",
    ]  # fmt: skip
    data = np.load(out / "samples.npz")
    assert data["samples"].shape == (16, 30, 2)
    assert data["accept_global"].shape == data["accept_local"].shape == (16,)
    for key in (
        "ess_bulk_mean",
        "rhat_max",
        "accept_global_mean",
        "accept_local_mean",
        "n_chains",
        "n_steps",
        "wall_seconds",
        "emd",
        "emd_exact",
    ):
        assert key in summary, key
    # the chain state continued from fit, and the module kept the state after sampling
    np.testing.assert_allclose(data["samples"][:, -1], model.chain_x.numpy(), rtol=1e-6)


def _resume_model():
    return _flex(n_chains=12, seed=3, backward_kl_weight=0.3)


def test_exact_resume(tmp_path):
    """fit 8 steps, stop, resume to 16 == fit 16 straight (chains, flow, step size, RNG)."""
    dm = ChainDataModule(n_chains=12)
    straight = _resume_model()
    _trainer(tmp_path / "a", max_steps=16).fit(straight, datamodule=dm)

    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0, every_n_train_steps=4
    )
    interrupted = _resume_model()
    _trainer(tmp_path / "b", max_steps=8, enable_checkpointing=True, callbacks=[ckpt]).fit(
        interrupted, datamodule=dm
    )
    resumed = _resume_model()
    _trainer(
        tmp_path / "b",
        max_steps=16,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt2", save_last=True)],
    ).fit(
        resumed,
        datamodule=ChainDataModule(n_chains=12),
        ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"),
    )
    assert not torch.equal(interrupted.chain_x, straight.chain_x)
    for name, a in straight.state_dict().items():
        assert torch.equal(a, resumed.state_dict()[name]), name


def test_flex2mcmc_recovers_mode_weights_mala_does_not(tmp_path):
    """25-mode grid mixture, all chains start in one corner mode.

    FlEx2MCMC's draws reach every mode with the right weights (EMD to exact
    samples close to the EMD between two exact samples); MALA with the same
    number of steps (its adapted dense metric widens its moves, but not from mode to
    mode) leaves the mode weights far from the truth and some modes unvisited.
    """
    target = GridMixture(k=5)
    dm = ChainDataModule(n_chains=64, init_loc=[-10.0, -10.0], init_scale=0.5)
    proposal = FlowProposal(2, n_blocks=4, hidden_features=32, scale=8.0)
    flex = FlEx2MCMC(
        target,
        lx.Ex2MCMC(proposal, n_particles=30, step_size=0.5, n_local_steps=2),
        n_chains=64,
        seed=0,
    )
    mala = MCMCSampler(target, lx.MALA(0.5), n_chains=64, seed=0)
    g = torch.Generator().manual_seed(0)
    ref = target.sample(2000, generator=g).numpy()
    floor = emd(target.sample(2000, generator=g).numpy(), ref)
    results = {}
    for name, model in {"flex": flex, "mala": mala}.items():
        trainer = _trainer(tmp_path / name, max_steps=150)
        trainer.fit(model, datamodule=dm)
        trainer.sample(
            model, datamodule=dm, n_steps=100, output_dir=str(tmp_path / name), progress=False
        )
        samples = np.load(tmp_path / name / "samples.npz")["samples"]
        weights = (
            np.bincount(target.assign(torch.from_numpy(samples).float()).flatten(), minlength=25)
            / samples[..., 0].size
        )
        results[name] = (emd(samples.reshape(-1, 2), ref), weights)
    flex_emd, flex_w = results["flex"]
    mala_emd, mala_w = results["mala"]
    # total variation between the visited mode frequencies and the true 1/25 each
    flex_tv = 0.5 * np.abs(flex_w - 1 / 25).sum()
    mala_tv = 0.5 * np.abs(mala_w - 1 / 25).sum()
    assert flex_emd < 2 * floor, (flex_emd, floor)
    assert (flex_w > 0.02).all(), flex_w  # every mode visited (true weight 0.04)
    assert flex_tv < 0.1, flex_tv
    assert mala_emd > 20 * floor, (mala_emd, floor)
    assert mala_tv > 0.3, mala_tv  # MALA stays near the corners it started in (FlEx2: < 0.1)
    # modes MALA leaves (nearly) unvisited: 4 of 25 at the CPU's best and baseline kernels
    assert (mala_w < 0.005).sum() >= 2, mala_w


def test_warm_start_fits_the_flow_to_the_given_distribution(tmp_path):
    """Before the first move the flow is fitted (max. likelihood) to ``warm_start``."""
    warm = GaussianProposal(2, loc=[4.0, -4.0], scale=0.5)
    model = _flex(warm_start=warm, warm_start_steps=300, flow_train_epochs=0,
                  optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))  # fmt: skip
    before = model.proposal.sample(2000, torch.Generator().manual_seed(0)).mean(0)
    _trainer(tmp_path, max_steps=1).fit(model, datamodule=ChainDataModule(n_chains=16))
    with torch.no_grad():
        after = model.proposal.sample(2000, torch.Generator().manual_seed(0)).mean(0)
    assert torch.allclose(before, torch.zeros(2), atol=0.3)  # the untrained flow: N(0, 3^2)
    torch.testing.assert_close(after, torch.tensor([4.0, -4.0]), atol=0.5, rtol=0)
    assert bool(model.warm_start_done)


class _Holey(torch.nn.Module):
    """N(0, I) whose log-density is NaN for x_0 > 1 (a buggy user target)."""

    dim = 2

    def log_prob(self, x):
        lp = -0.5 * x.square().sum(-1)
        return torch.where(x[..., 0] > 1.0, torch.nan, lp)


def test_nonfinite_log_densities_are_counted_logged_and_returned(tmp_path):
    model = MCMCSampler(_Holey(), lx.MALA(0.8), n_chains=8, seed=0)
    dm = ChainDataModule(n_chains=8, init_loc=[-0.5, 0.0], init_scale=0.1)
    trainer = _trainer(tmp_path, max_steps=30)
    with pytest.warns(
        RuntimeWarning, match=r"fit .*_Holey.log_prob .*NaN or \+inf \d+ times"
    ) as rec:
        trainer.fit(model, datamodule=dm)
    # attributed to the target's log_prob (where the fix belongs), not to a Lightning file
    (warning,) = [w for w in rec if "NaN or +inf" in str(w.message)]
    assert (
        warning.filename == __file__ and warning.lineno == _Holey.log_prob.__code__.co_firstlineno
    )
    assert model.nonfinite.shape == (8,) and model.nonfinite.sum() > 0
    assert float(trainer.callback_metrics["nonfinite"]) == float(model.nonfinite.sum())
    with pytest.warns(RuntimeWarning, match=r"sample .*NaN or \+inf"):
        (out,) = trainer.predict(model, datamodule=dm)
    assert out["nonfinite"].shape == (8,) and out["nonfinite"].sum() > 0
    assert out["complete"] is True


def test_predict_step_passes_a_stop_request_through(tmp_path):
    from lightning_ex2 import interrupt

    class StopAt(torch.nn.Module):
        dim = 2
        calls = 0

        def log_prob(self, x):
            StopAt.calls += 1
            if StopAt.calls == 8:  # init (1) + 6 steps: stop after the 7th step
                interrupt.request("test")
            return -0.5 * x.square().sum(-1)

    model = MCMCSampler(StopAt(), lx.MALA(0.3), n_chains=4, seed=0)
    model.sampling.n_steps, model.sampling.progress = 50, False
    interrupt.clear()
    try:
        (out,) = _trainer(tmp_path).predict(model, datamodule=ChainDataModule(n_chains=4))
    finally:
        interrupt.clear()
    assert out["complete"] is False
    assert out["samples"].shape == (4, 7, 2) and out["log_prob"].shape == (4, 7)
    torch.testing.assert_close(model.chain_x, out["samples"][:, -1])


def test_predict_runs_gradient_kernels_under_inference_mode(tmp_path):
    """``sample`` needs autograd; the module leaves inference mode itself."""
    model = MCMCSampler(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.3), n_chains=4)
    model.sampling.n_steps, model.sampling.progress = 5, False
    trainer = _trainer(tmp_path, inference_mode=True)
    (out,) = trainer.predict(model, datamodule=ChainDataModule(n_chains=4))
    assert out["samples"].shape == (4, 5, 2) and out["complete"] is True


def test_state_buffers_are_named_by_the_state_tuples():
    model = MCMCSampler(
        Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.3, target_accept=0.5), n_chains=4
    )
    keys = set(model.state_dict())
    assert {"state.x", "state.log_prob", "state.grad", "chain_ready", "nonfinite"} <= keys
    assert {"tuning.params.step_size", "tuning.frozen", "tuning.da.log_step_avg"} <= keys
    assert not [k for k in keys if k.startswith("da_")]
    isir = MCMCSampler(
        Gaussian(torch.zeros(2), torch.eye(2)), lx.ISIR(GaussianProposal(2)), n_chains=4
    )
    assert "state.grad" not in isir.state_dict() and isir.tuning is None


def _diagonal_model():
    target = Gaussian(torch.zeros(3), torch.diag(torch.tensor([0.01, 1.0, 25.0])))
    hmc = lx.HMC(0.05, n_leapfrog=3, target_accept=0.7, mass_matrix="diagonal")
    kernel = lx.Ex2MCMC(GaussianProposal(3, scale=3.0), 8, local_kernel=hmc, n_local_steps=1)
    return MCMCSampler(target, kernel, n_chains=12, seed=5)


def test_fit_adapts_the_diagonal_mass_matrix_and_resumes_exactly(tmp_path):
    """The mass matrix, its window moments and the schedule travel in checkpoints:
    fit 40 steps, stop at 20 (inside a window), resume == fit 40 straight."""
    dm = ChainDataModule(n_chains=12)
    straight = _diagonal_model()
    _trainer(tmp_path / "a", max_steps=40).fit(straight, datamodule=dm)
    keys = set(straight.state_dict())
    assert {"tuning.params.inverse_mass_matrix", "tuning.variance.m2", "n_warmup"} <= keys
    assert int(straight.n_warmup) == 40
    m = straight.params.inverse_mass_matrix
    assert m.shape == (1, 3) and not torch.equal(m, torch.ones_like(m))
    assert m[0, 0] < m[0, 1] < m[0, 2]  # it follows the scales 0.1, 1, 5

    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0, every_n_train_steps=20
    )

    class StopAt20(pl.Callback):  # an interruption of the 40-step fit (same schedule)
        def on_train_batch_end(self, trainer, *args):
            trainer.should_stop = trainer.should_stop or trainer.global_step == 20

    interrupted = _diagonal_model()
    _trainer(
        tmp_path / "b", max_steps=40, enable_checkpointing=True, callbacks=[StopAt20(), ckpt]
    ).fit(interrupted, datamodule=dm)
    assert interrupted.global_step == 20
    resumed = _diagonal_model()
    _trainer(tmp_path / "b", max_steps=40).fit(
        resumed, datamodule=dm, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    for name, a in straight.state_dict().items():
        assert torch.equal(a, resumed.state_dict()[name]), name
    # predict returns the frozen step size per chain
    straight.sampling.n_steps, straight.sampling.progress = 4, False
    (out,) = _trainer(tmp_path / "c").predict(straight, datamodule=dm)
    torch.testing.assert_close(out["step_size"], straight.step_size.expand(12))


def test_flex2mcmc_with_an_hmc_local_kernel(tmp_path):
    """FlEx2MCMC follows Ex2MCMC's general form: flow trained, HMC parameters adapted."""
    torch.manual_seed(0)
    target = Gaussian(torch.tensor([1.0, -1.0]), torch.eye(2))
    flow = FlowProposal(2, flow="realnvp", n_blocks=2, hidden_features=16, scale=3.0)
    hmc = lx.HMC(0.2, n_leapfrog=3, target_accept=0.7, mass_matrix="diagonal")
    kernel = lx.Ex2MCMC(flow, n_particles=8, local_kernel=hmc, n_local_steps=1)
    model = FlEx2MCMC(target, kernel, n_chains=16, backward_kl_weight=0.5)
    before = [p.detach().clone() for p in flow.parameters()]
    _trainer(tmp_path, max_steps=30).fit(model, datamodule=ChainDataModule(n_chains=16))
    assert any(not torch.equal(a, b) for a, b in zip(before, flow.parameters()))
    assert bool(model.tuning.frozen) and int(model.n_warmup) == 30
    m = model.params.inverse_mass_matrix
    assert m.shape == (1, 2) and not torch.equal(m, torch.ones_like(m))
    torch.testing.assert_close(model.chain_log_prob, target.log_prob(model.chain_x))


def test_algorithm_names_the_sampler_that_runs():
    """The output set's figures are titled by the module's ``algorithm``: a FlEx2MCMC run
    (an Ex2MCMC kernel whose flow proposal the module trains) is FlEx2MCMC, not Ex2MCMC."""
    from lightning_ex2.lightning.cli import build_cli
    from lightning_ex2.output.writer import RunMeta

    quickstart = build_cli(["--config", "configs/quickstart.yaml"], run=False).model
    assert type(quickstart.kernel).__name__ == "Ex2MCMC"
    assert quickstart.algorithm == "FlEx2MCMC"
    meta = RunMeta("Ex2MCMC", "GridMixture", "FlEx2MCMC", 0, torch.device("cpu"), "FlEx2MCMC")
    assert meta.title == "FlEx2MCMC on GridMixture"
    target = Gaussian(torch.zeros(2))
    flow_isir = FlEx2MCMC(target, lx.ISIR(FlowProposal(2, n_blocks=1, hidden_features=4), 8))
    assert flow_isir.algorithm == "flow-i-SIR"
    assert MCMCSampler(target, lx.MALA(step_size=0.1)).algorithm == "MALA"
    fixed = lx.Ex2MCMC(GaussianProposal(2), n_particles=8, step_size=0.1)
    assert MCMCSampler(target, fixed).algorithm == "Ex2MCMC"  # no flow trained: the kernel


def test_fit_brings_back_lost_chains_and_sample_names_stuck_ones(tmp_path):
    """The module path uses the same warm-up as ``lx.sample``: ``fit`` with ``MALA()`` re-starts
    the chains that began far out in a steep tail; the ``sample`` command's step then
    names chains that a kernel without warm-up leaves stuck."""
    import warnings

    from tests.kernels.test_warmup import SteepStart, steep_starts

    init = tmp_path / "init.pt"
    torch.save(steep_starts(16, n_far=2, far=30.0), init)
    model = MCMCSampler(SteepStart(), lx.MALA(), n_chains=16, seed=0)
    _trainer(tmp_path, max_steps=60).fit(model, datamodule=ChainDataModule(16, init_path=init))
    assert int(model.n_warmup) == 60 and bool(model.tuning.frozen)
    assert (model.chain_x[:, 0] < 5).all(), model.chain_x[:2]  # back from x0 = 30
    torch.testing.assert_close(model.chain_log_prob, model.target.log_prob(model.chain_x))

    fixed = MCMCSampler(SteepStart(), lx.MALA(0.5, target_accept=None), n_chains=16, seed=0)
    fixed.sampling.n_steps, fixed.sampling.progress = 20, False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer(tmp_path).predict(fixed, datamodule=ChainDataModule(16, init_path=init))
    stuck = [str(w.message) for w in caught if "of moves after warm-up" in str(w.message)]
    assert len(stuck) == 1 and "2 of 16 chains" in stuck[0] and "chains 0, 1" in stuck[0], stuck


def test_checkpoints_from_before_chain_health_still_load():
    model = MCMCSampler(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(), n_chains=4)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("tuning.health.")}
    state.pop("n_warmup")
    checkpoint = {"state_dict": state}
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])  # strict: every buffer is there
    assert int(model.n_warmup) == 0 and not model.tuning.health.steps.any()
