"""The GAN target diagnostics: the MALA pilot is an internal run, and its verdict is recorded
in the diagnostics, never shown to the user as a warning about their run."""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from lightning_ex2.gan import hardness as gan_diagnostics
from lightning_ex2.gan.hardness import target_diagnostics
from lightning_ex2.output.files import OutputSet
from lightning_ex2.output.writer import Draws, RunMeta, SamplePlan, build_summary
from tests.gan.test_target import _tiny_target


def test_pilot_that_cannot_converge_raises_no_warning_and_records_its_verdict() -> None:
    # 32 chains x 4 kept draws = 128 draws: no ESS reaches the rule's 400, so the
    # pilot fails the convergence rule whatever its draws are.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = target_diagnostics(_tiny_target(), n=200, n_trials=500, pilot_chains=32, pilot_steps=8)
    assert d["mala_pilot_converged"] is False
    assert any(c.startswith("ess_bulk_min") for c in d["mala_pilot_failed_checks"])
    assert d["mala_pilot_warnings"] == []
    assert d["mala_step"] > 0


def test_pilot_warnings_are_recorded_not_shown(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Whatever the pilot run warns about (e.g. non-finite log-densities it met) lands in
    the diagnostics, not on the user's console."""
    import lightning_ex2.sampling as sampling

    original = sampling.sample

    def noisy(*args, **kwargs):  # type: ignore[no-untyped-def]
        run = original(*args, **kwargs)
        warnings.warn("sample: the pilot met something", RuntimeWarning, stacklevel=2)
        return run

    monkeypatch.setattr(sampling, "sample", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = target_diagnostics(_tiny_target(), n=200, n_trials=500, pilot_chains=8, pilot_steps=8)
    assert d["mala_pilot_warnings"] == ["sample: the pilot met something"]


def _draws(n_chains: int, n_draws: int, dim: int) -> Draws:
    g = np.random.default_rng(0)
    samples = g.standard_normal((n_chains, n_draws, dim)).astype(np.float32)
    return Draws(
        samples=samples,
        log_prob=-0.5 * (samples**2).sum(-1),
        chain_index=np.arange(n_chains),
        info={"accept_local": np.full(n_chains, 0.6, dtype=np.float32)},
        draw_stats={},
        starts=None,
        wall_seconds=1.0,
        world_size=1,
        image_metrics={},
    )


def test_gan_sample_summary_is_written_without_running_a_pilot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The writer's summary of a GAN run runs no sampler of its own: no target diagnostics
    (computed when asked: ``python -m lightning_ex2.gan.hardness``), no warning
    for draws that converge."""
    target = _tiny_target()
    plan = SamplePlan(OutputSet(tmp_path / "out"), n_steps=500)
    meta = RunMeta("MALA", "GANLatentTarget", "MCMCSampler", 0, torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary, _, _ = build_summary(_draws(8, 500, 2), plan, target, meta)
    assert summary["converged"] is True
    assert "target_diagnostics" not in summary


def test_command_reads_the_target_from_a_config_without_the_cli(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = {
        "class_path": "lightning_ex2.gan.GANLatentTarget",
        "init_args": {
            "generator": {"class_path": "lightning_ex2.gan.FashionGenerator",
                          "init_args": {"latent_dim": 4, "ngf": 4}},
            "discriminator": {"class_path": "lightning_ex2.gan.FashionDiscriminator",
                              "init_args": {"ndf": 4}},
        },
    }  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": {"target": spec}}}))
    threads = torch.get_num_threads()
    try:
        assert (
            gan_diagnostics.main(["--config", str(config), "--n", "100", "--pilot_chains", "0"])
            == 0
        )
    finally:
        torch.set_num_threads(threads)
    d = json.loads(capsys.readouterr().out)
    assert d["n"] == 100 and 0 < d["importance_ess_fraction"] <= 1 and "mala_step" not in d
    assert "lightning_ex2.lightning.cli" not in _imports_of(gan_diagnostics.__file__)


def _imports_of(path: str) -> set[str]:
    tree = ast.parse(Path(path).read_text())
    return {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }


def test_no_pilot_no_verdict() -> None:
    d = target_diagnostics(_tiny_target(), n=200, n_trials=500, pilot_chains=0)
    assert "mala_pilot_converged" not in d and "mala_step" not in d
