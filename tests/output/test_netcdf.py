"""ArviZ-native outputs: samples.nc, Run.to_arviz, the loader, summary.json's diagnostics,
the convergence rule and its warning, nested R-hat."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import xarray as xr

import lightning_ex2 as lx
from lightning_ex2.diagnostics import diagnostics, ess, nested_rhat
from lightning_ex2.lightning import ChainDataModule, MCMCSampler
from lightning_ex2.lightning.trainer import Ex2Trainer
from lightning_ex2.output import netcdf as inference_data
from lightning_ex2.output.figures import pair_figure, rank_figure
from lightning_ex2.output.files import load_output_set, save_netcdf
from lightning_ex2.output.netcdf import import_arviz
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.sampling import superchain_ids
from lightning_ex2.targets import Gaussian, GaussianMixture

az = import_arviz()


def _trainer(tmp_path) -> Ex2Trainer:
    return Ex2Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip


def _arviz_values(samples: np.ndarray) -> dict[str, np.ndarray]:
    idata = xr.Dataset({"x": (("chain", "draw", "dim"), samples)})  # ArviZ 0.x and 1.x
    return {
        "ess_bulk": az.ess(idata, method="bulk")["x"].values,
        "ess_tail": az.ess(idata, method="tail")["x"].values,
        "rhat": az.rhat(idata)["x"].values,  # ArviZ's default: rank-normalized
        "rhat_split": az.rhat(idata, method="split")["x"].values,
        "mcse": az.mcse(idata)["x"].values,
    }


@pytest.fixture(scope="module")
def output_set(tmp_path_factory):
    """One ``sample`` output set of Ex2MCMC (every sample_stats field) on a 3-D Gaussian."""
    tmp_path = tmp_path_factory.mktemp("set")
    target = Gaussian(torch.tensor([1.0, -1.0, 0.5]), torch.eye(3))
    kernel = lx.Ex2MCMC(GaussianProposal(3, scale=2.0), n_particles=8, step_size=0.4,
                        n_local_steps=1)  # fmt: skip
    model = MCMCSampler(target, kernel, n_chains=6, seed=3)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the verdict is tested elsewhere
        _trainer(tmp_path).sample(model, datamodule=ChainDataModule(n_chains=6, chains_per_batch=4),
                                  n_steps=40, output_dir=str(out), progress=False)  # fmt: skip
    return out


def test_samples_nc_read_by_arviz_equals_samples_npz(output_set):
    idata = az.from_netcdf(output_set / "samples.nc")
    npz = np.load(output_set / "samples.npz")
    post, stats = idata.posterior, idata.sample_stats
    assert post["x"].dims == ("chain", "draw", "dim")
    assert npz["samples"].dtype == np.float32 and post["x"].dtype == np.float32  # the run's
    assert npz["log_prob"].dtype == np.float32 and stats["lp"].dtype == np.float32
    np.testing.assert_array_equal(post["x"].values, npz["samples"])
    np.testing.assert_array_equal(stats["lp"].values, npz["log_prob"])
    np.testing.assert_array_equal(post["chain"].values, npz["chain_index"])
    assert {"accept_global", "accept_local", "particle_ess", "nonfinite"} <= set(stats.data_vars)
    for name in ("accept_global", "accept_local", "particle_ess"):  # per draw -> per chain
        assert stats[name].shape == (6, 40)
        np.testing.assert_allclose(stats[name].values.mean(axis=1), npz[name], rtol=1e-5)
    assert stats["nonfinite"].dtype == np.int64 and npz["nonfinite"].dtype == np.int64
    np.testing.assert_array_equal(stats["nonfinite"].values.sum(axis=1), npz["nonfinite"])
    assert not np.allclose(stats["accept_global"].values, stats["accept_global"].values[:, :1])
    attrs = post.attrs
    assert attrs["kernel"] == "Ex2MCMC" and attrs["target"] == "Gaussian" and attrs["seed"] == 3
    assert attrs["created_by"] == f"lightning-ex2 {lx.__version__}"


def test_summary_diagnostics_equal_arviz_on_the_draws(output_set):
    data = load_output_set(output_set)
    s = data.summary
    ref = _arviz_values(data.samples.astype(np.float64))
    assert s["ess_bulk_min"] == pytest.approx(ref["ess_bulk"].min(), rel=1e-10)
    assert s["ess_bulk_mean"] == pytest.approx(ref["ess_bulk"].mean(), rel=1e-10)
    assert s["ess_tail_min"] == pytest.approx(ref["ess_tail"].min(), rel=1e-10)
    assert s["rhat_max"] == pytest.approx(ref["rhat"].max(), rel=1e-10)
    assert s["rhat_split_max"] == pytest.approx(ref["rhat_split"].max(), rel=1e-10)
    assert s["mcse_mean_max"] == pytest.approx(ref["mcse"].max(), rel=1e-10)
    assert s["ess_geyer_mean"] == pytest.approx(ess(data.samples).mean(), rel=1e-10)
    assert s["rhat_max"] != s["rhat_split_max"]  # two definitions, two keys
    assert isinstance(s["converged"], bool) and "convergence_rule" in s
    assert s["step_size"] == pytest.approx(0.4)  # no fit: the initial step size, frozen
    assert isinstance(s["nonfinite"], int)
    assert "ess_mean" not in s and "ess_min" not in s  # renamed (README: output set)


def test_load_output_set_returns_draws_stats_and_summary(output_set):
    data = load_output_set(output_set)
    assert data.samples.shape == (6, 40, 3) and data.log_prob.shape == (6, 40)
    assert data.sample_stats["accept_local"].shape == (6, 40)
    assert data.chain_info["accept_local"].shape == (6,)
    assert data.summary["n_draws"] == 40
    np.testing.assert_array_equal(data.to_arviz().posterior["x"].values, data.samples)
    assert {"rank.png", "pair.png", "samples.nc"} <= {p.name for p in output_set.iterdir()}
    with pytest.raises(FileNotFoundError, match="not an output set"):
        load_output_set(output_set.parent)


def test_run_to_arviz_has_per_draw_stats():
    target = Gaussian(torch.zeros(2), torch.eye(2))
    run = lx.sample(target, lx.MALA(0.5, target_accept=0.574), n_chains=4, n_steps=30,
                    burn_in=20, seed=1, progress=False, check_convergence=False)  # fmt: skip
    idata = run.to_arviz()
    np.testing.assert_array_equal(idata.posterior["x"].values, run.samples.numpy())
    stats = idata.sample_stats
    np.testing.assert_array_equal(stats["lp"].values, run.log_prob.numpy())
    np.testing.assert_allclose(stats["accept_local"].values.mean(1), run.info["accept_local"])
    step = run.tuning.step_size.expand(4).numpy()
    np.testing.assert_array_equal(stats["step_size"].values, np.repeat(step[:, None], 30, 1))
    assert stats["nonfinite"].dtype == np.int64 and "accept_global" not in stats


def test_thinned_draw_stats_sum_counts_and_keep_the_kept_step():
    class Cut(torch.nn.Module):  # N(0, I) with NaN for x_0 > 1: MALA meets NaN proposals
        dim = 2

        def log_prob(self, x):
            lp = -0.5 * x.square().sum(-1)
            return torch.where(x[..., 0] > 1.0, torch.nan, lp)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = lx.sample(Cut(), lx.MALA(1.0), n_chains=8, n_steps=60, thin=3,
                        init=torch.zeros(8, 2) - 0.5, seed=0, progress=False)  # fmt: skip
    per_draw = run.draw_info["nonfinite"]
    assert per_draw.shape == (8, 20)
    torch.testing.assert_close(per_draw.sum(1), run.info["nonfinite"])  # no burn-in: all
    assert run.info["nonfinite"].sum() > 0
    assert (per_draw > 1).any()  # summed over the 3 steps of a draw, not just the kept one


def test_not_converged_run_warns_and_summary_says_why():
    # two well-separated modes, half the chains started in each: MALA cannot cross
    target = GaussianMixture(torch.tensor([[-8.0, 0.0], [8.0, 0.0]]), scales=torch.ones(2))
    init = torch.tensor([[-8.0, 0.0], [8.0, 0.0]]).repeat(4, 1) + 0.1 * torch.randn(
        8, 2, generator=torch.Generator().manual_seed(0)
    )
    with pytest.warns(RuntimeWarning, match=r"not converged: rhat_max \d+\.\d+ > 1\.01"):
        run = lx.sample(target, lx.MALA(0.8), n_chains=8, n_steps=200, init=init, seed=0,
                        progress=False)  # fmt: skip
    s = run.summary()
    assert s["converged"] is False and s["rhat_max"] > 1.5  # rank-normalized: bounded
    assert s["rhat_split_max"] > 5  # the classic one sees the 16-sd gap between the modes
    assert any(c.startswith("rhat_max") for c in s["failed_checks"])


def test_sample_command_warns_when_not_converged(tmp_path):
    """The writer of ``lightning-ex2 sample``: the verdict in summary.json and a warning."""
    target = GaussianMixture(torch.tensor([[-8.0, 0.0], [8.0, 0.0]]), scales=torch.ones(2))
    model = MCMCSampler(target, lx.MALA(0.8), n_chains=8, seed=0)  # N(0, I) starts: both modes
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match=r"sample \(.*out\): the chains have not converged"):
        _trainer(tmp_path).sample(model, datamodule=ChainDataModule(n_chains=8), n_steps=100,
                                  output_dir=str(out), progress=False)  # fmt: skip
    s = load_output_set(out).summary
    assert s["converged"] is False and s["rhat_max"] > 1.5
    assert s["failed_checks"][0].startswith("rhat_max")


def test_converged_run_does_not_warn():
    target = Gaussian(torch.zeros(2), torch.eye(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        run = lx.sample(target, lx.MALA(1.2), n_chains=8, n_steps=500, seed=0, progress=False)
    s = run.summary()
    assert s["converged"] is True and s["failed_checks"] == []
    assert s["rhat_max"] <= 1.01 and s["ess_bulk_min"] >= 400


def test_convergence_rule_thresholds():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(2, 300, 2))  # 2 chains: bulk/tail ESS need 200, not 400
    s = diagnostics(iid)
    assert s["converged"] is True, s["failed_checks"]
    s = diagnostics(iid[:, :3])
    assert s["converged"] is None and s["rhat_max"] is None  # too few draws to judge
    few = diagnostics(rng.normal(size=(4, 40, 2)))  # 160 draws in all: ESS < 400
    assert few["converged"] is False
    assert [c.split()[0] for c in few["failed_checks"]] == ["ess_bulk_min", "ess_tail_min"]


def test_nested_rhat_known_answers():
    # a hand-computed case: B = 8, W = 1
    x = np.array([[0.0, 1.0], [1.0, 2.0], [4.0, 5.0], [5.0, 6.0]])
    assert float(nested_rhat(x, [0, 0, 1, 1])) == pytest.approx(3.0)
    # superchains {1, 3} and {0, 2}: means 3.5 and 2.5 (B = 0.5), B_k = 8, W_k = 0.5
    assert float(nested_rhat(x, [1, 0, 1, 0])) == pytest.approx(np.sqrt(1 + 0.5 / 8.5))
    # independent draws: nR^2 - 1 -> 1 / (M (N + 1)) (E[B] / E[W]); K = 4000 superchains
    k, m, n = 4000, 4, 3
    iid = np.random.default_rng(1).normal(size=(k * m, n, 2))
    ids = np.repeat(np.arange(k), m)
    got = nested_rhat(iid, ids) ** 2 - 1
    expected = 1 / (m * (n + 1))
    # B is a variance of K means: relative sd sqrt(2 / (K - 1)); 4 sd
    np.testing.assert_allclose(got, expected, rtol=4 * np.sqrt(2 / (k - 1)))
    # superchains stuck in two places: nested R-hat sees it
    stuck = iid[:, :, 0] + 5.0 * (ids % 2 == 0)[:, None]
    assert float(nested_rhat(stuck, ids)) > 2
    with pytest.raises(ValueError, match="equal size"):
        nested_rhat(x, [0, 0, 0, 1])


def test_shared_starts_give_nested_rhat_in_the_summary():
    starts = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    assert superchain_ids(starts) == [0, 1, 0, 2]
    assert superchain_ids(torch.eye(3)) is None
    init = torch.tensor([[-1.0, 0.0], [1.0, 0.0]]).repeat_interleave(4, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = lx.sample(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(1.0), n_chains=8,
                        n_steps=200, init=init, seed=0, progress=False)  # fmt: skip
    assert run.meta["superchains"] == [0, 0, 0, 0, 1, 1, 1, 1]
    s = run.summary()
    assert s["n_superchains"] == 2
    ids = np.repeat([0, 1], 4)
    assert s["rhat_nested_max"] == pytest.approx(nested_rhat(run.numpy(), ids).max())


def test_arviz_1_path_builds_a_datatree(monkeypatch, tmp_path):
    """ArviZ >= 1 works on ``xarray.DataTree``: the same groups, the same file."""
    groups = inference_data.build_groups(
        np.zeros((2, 5, 3), np.float32), np.zeros((2, 5)), {"nonfinite": np.ones((2, 5))},
        {"kernel": "MALA", "seed": None}, dim_names=["a", "b", "c"],
    )  # fmt: skip
    monkeypatch.setattr(inference_data, "arviz_major", lambda: 1)
    tree = inference_data.to_arviz(groups)
    assert isinstance(tree, xr.DataTree)
    assert tree["posterior"]["x"].shape == (2, 5, 3)
    assert list(tree["posterior"]["dim"].values) == ["a", "b", "c"]
    assert tree["sample_stats"]["nonfinite"].dtype == np.int64
    path = save_netcdf(tmp_path / "s.nc", groups)
    back = xr.open_datatree(path, engine="h5netcdf")
    assert set(back.children) == {"posterior", "sample_stats"}
    assert back["posterior"].attrs["kernel"] == "MALA" and "seed" not in back["posterior"].attrs


def test_rank_and_pair_figures():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 50, 4))
    assert len(rank_figure(x, max_dims=2).axes) == 2
    assert len([a for a in pair_figure(x).axes if a.axison]) == 10  # lower triangle + diagonal
    with pytest.raises(ValueError, match="2 to 8"):
        pair_figure(x[:, :, :1])


def _posteriordb_port():
    from lightning_ex2.targets import posteriordb

    name = "eight_schools-eight_schools_noncentered"
    return posteriordb.load(name, "tests/fixtures/posteriordb")


def test_named_constrained_values_in_posterior_and_x_in_unconstrained(tmp_path):
    """A target with ``constrain`` (a posteriordb port): ``posterior`` holds its named
    constrained values with ArviZ's dims, ``unconstrained_posterior`` the draws ``x``;
    the file, ArviZ and the loader agree."""
    target = _posteriordb_port()
    run = lx.sample(target, lx.MALA(), n_chains=4, n_steps=30, burn_in=30, seed=0,
                    progress=False, check_convergence=False)  # fmt: skip
    idata = run.to_arviz()
    want = target.constrain(run.samples)
    assert set(idata.posterior.data_vars) == set(want) == {"theta_trans", "mu", "tau", "theta"}
    assert idata.posterior["theta"].dims == ("chain", "draw", "theta_dim_0")
    assert idata.posterior["tau"].dims == ("chain", "draw")
    for name, value in want.items():
        np.testing.assert_array_equal(idata.posterior[name].values, value.numpy())
    assert (idata.posterior["tau"].values > 0).all()
    np.testing.assert_array_equal(idata.unconstrained_posterior["x"].values, run.samples.numpy())
    summary = az.summary(idata)  # ArviZ names the constrained scalars
    assert {"tau", "theta[0]", "mu"} <= set(summary.index)

    groups = inference_data.build_groups(
        run.samples, run.log_prob, run.draw_info, run.meta,
        constrained=inference_data.constrained_draws(target, run.samples),
    )  # fmt: skip
    path = save_netcdf(tmp_path / "s.nc", groups)
    back = az.from_netcdf(path)
    assert {"posterior", "unconstrained_posterior", "sample_stats"} <= set(back.groups())
    np.testing.assert_array_equal(back.posterior["theta"].values, want["theta"].numpy())
    read = inference_data.read_netcdf(path)  # the optional group read when present
    assert set(read) == {"posterior", "sample_stats", "unconstrained_posterior"}


def test_constrained_draws_none_without_constrain_and_shape_checked():
    assert inference_data.constrained_draws(Gaussian(torch.zeros(2)), np.zeros((2, 3, 2))) is None
    with pytest.raises(ValueError, match=r"constrained\['a'\]: shape \(2, 4\)"):
        inference_data.build_groups(
            np.zeros((2, 3, 1)), np.zeros((2, 3)), {}, constrained={"a": np.zeros((2, 4))}
        )


def test_sample_command_writes_named_values_of_a_port(tmp_path):
    """The ``sample`` command's ``samples.nc`` carries the port's names; ``samples.npz``
    keeps the unconstrained draws (resume and the loader read those)."""
    target = _posteriordb_port()
    model = MCMCSampler(target, lx.MALA(step_size=0.1), n_chains=4, seed=1)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _trainer(tmp_path).sample(model, datamodule=ChainDataModule(n_chains=4),
                                  n_steps=20, output_dir=str(out), progress=False)  # fmt: skip
    data = load_output_set(out)
    idata = data.to_arviz()
    assert data.samples.shape == (4, 20, 10)
    np.testing.assert_array_equal(idata.unconstrained_posterior["x"].values, data.samples)
    want = target.constrain(torch.as_tensor(data.samples))
    np.testing.assert_allclose(idata.posterior["theta"].values, want["theta"].numpy(), rtol=1e-12)
    assert idata.posterior["theta"].shape == (4, 20, 8)
