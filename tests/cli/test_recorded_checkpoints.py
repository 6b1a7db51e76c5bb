"""Checkpoints and configs recorded earlier: a checkpoint is known by its settings and shapes.

``tests/fixtures/gan_main/`` holds a tiny GAN-latent i-SIR checkpoint (``sampler.ckpt``, from
``digits_isir_tiny.yaml`` with ``generator.pt``/``discriminator.pt``), its draws as main
f9c88f2 sampled them (``samples_main.npz``), and a ``GANModule`` checkpoint
(``gan_module.ckpt``, ``configs/gan/digits_gan_train.yaml`` with hidden 4, one epoch);
``scripts/gan_main_fixtures.py`` remakes the checkpoints. The draws are float32 recorded on
one CPU and are compared at a tolerance (see ``tests/gan/test_classifier.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_ex2 import checks as runcheck
from lightning_ex2 import interrupt
from lightning_ex2.gan import ClassifierFeatures
from lightning_ex2.lightning import cli
from tests.gan.test_classifier import RECORDED_RTOL

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "gan_main"


def _config(tmp_path: Path) -> Path:
    text = (DATA / "digits_isir_tiny.yaml").read_text()
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("tests/fixtures/gan_main/", f"{DATA}/"))
    return path


def _lightning_ex2(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr("sys.argv", ["lightning-ex2", *map(str, args)])
    try:
        cli.main()
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    finally:
        interrupt.clear()
    return 0


def _with_spec(tmp_path: Path, **entries: str) -> Path:
    """``sampler.ckpt`` with some spec entries replaced (as another version recorded them)."""
    ckpt = torch.load(DATA / "sampler.ckpt", weights_only=True)
    ckpt[runcheck.SPEC_KEY] = {**ckpt[runcheck.SPEC_KEY], **entries}
    path = tmp_path / "recorded.ckpt"
    torch.save(ckpt, path)
    return path


def _sample(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ckpt: Path, out: Path) -> int:
    return _lightning_ex2(
        monkeypatch, "sample", "--config", _config(tmp_path), "--ckpt_path", ckpt,
        "--n_steps", 5, "--output_dir", out,
    )  # fmt: skip


def test_checkpoint_entries_name_classes_not_modules() -> None:
    assert runcheck.same_class("GANLatentTarget", "GANLatentTarget")
    assert runcheck.same_class("lightning_ex2.gan.target.GANLatentTarget", "GANLatentTarget")
    assert not runcheck.same_class("lightning_ex2.targets.banana.Banana", "GANLatentTarget")
    assert not runcheck.same_class("MyGANLatentTarget", "GANLatentTarget")
    spec = torch.load(DATA / "sampler.ckpt", weights_only=True)[runcheck.SPEC_KEY]
    assert spec["target"] == "GANLatentTarget" and spec["kernel"] == "ISIR"
    assert spec["target.generator"] == "DigitsGenerator"


@pytest.mark.parametrize("recorded", ["new", "module-paths"])
def test_a_sampler_checkpoint_samples_main_s_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: str
) -> None:
    ckpt = DATA / "sampler.ckpt"
    if recorded == "module-paths":  # as earlier versions recorded the classes, old modules
        ckpt = _with_spec(
            tmp_path,
            target="lightning_ex2.gan.target.GANLatentTarget",
            **{"target.generator": "lightning_ex2.gan.architectures.DigitsGenerator"},
            kernel="lightning_ex2.kernels.isir.ISIR",
        )
    out = tmp_path / "out"
    assert _sample(monkeypatch, tmp_path, ckpt, out) == 0
    # The same draws up to the last bits of float32: an i-SIR selection flips only where two
    # particles' log-weights tie to ~1e-6, and a changed target, proposal or weight moves the
    # draws and their statistics by far more.
    ours, main = np.load(out / "samples.npz"), np.load(DATA / "samples_main.npz")
    assert set(main.files) <= set(ours.files)
    for key in main:
        assert ours[key].shape == main[key].shape and ours[key].dtype == main[key].dtype, key
        if np.issubdtype(main[key].dtype, np.integer):
            np.testing.assert_array_equal(ours[key], main[key], err_msg=key)
        else:  # accept_local is NaN (i-SIR has no local move) in both
            np.testing.assert_allclose(
                ours[key], main[key], rtol=RECORDED_RTOL, atol=RECORDED_RTOL, equal_nan=True,
                err_msg=key,
            )  # fmt: skip


def test_a_checkpoint_of_another_class_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = _with_spec(tmp_path, target="lightning_ex2.targets.gaussian.Gaussian")
    assert _sample(monkeypatch, tmp_path, ckpt, tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert (
        "target: checkpoint lightning_ex2.targets.gaussian.Gaussian, config GANLatentTarget" in err
    )


def test_a_gan_module_checkpoint_loads() -> None:
    from lightning_ex2.gan import (
        DigitsDiscriminator,
        DigitsGenerator,
        GANModule,
        load_gan_checkpoint,
    )

    path = DATA / "gan_module.ckpt"
    g = load_gan_checkpoint(DigitsGenerator(hidden=4), path)
    d = load_gan_checkpoint(DigitsDiscriminator(hidden=4), path)
    model = GANModule(DigitsGenerator(hidden=4), DigitsDiscriminator(hidden=4), n_grid_images=1)
    ckpt, diffs = runcheck.check_checkpoint(model, path)
    assert diffs == []
    assert ckpt["hyper_parameters"]["_class_path"] == "lightning_ex2.modules.GANModule"  # recorded
    model.load_state_dict(ckpt["state_dict"])
    assert torch.equal(model.generator.net[0].weight, g.net[0].weight)
    assert torch.equal(model.discriminator.net[0].weight, d.net[0].weight)


def test_a_config_with_metrics_builds(tmp_path: Path) -> None:
    from lightning_ex2.gan import GANLatentTarget, ImageQualityMetrics

    extractors = (
        "feature_extractor: {class_path: lightning_ex2.gan.ClassifierFeatures, "
        "init_args: {weights: fashion}}\n      logits_extractor: {class_path: "
        "lightning_ex2.gan.ClassifierLogits, init_args: {weights: fashion}}"
    )
    text = (
        _config(tmp_path)
        .read_text()
        .replace(
            "  enable_checkpointing: false\n",
            "  enable_checkpointing: false\n  callbacks:\n"
            "  - class_path: lightning_ex2.gan.ImageQualityMetrics\n"
            f"    init_args:\n      {extractors}\n",
        )
    )
    path = tmp_path / "with_metrics.yaml"
    path.write_text(text)
    argv = sys.argv
    try:
        sys.argv = ["lightning-ex2"]
        built = cli.build_cli(["--config", str(path)], run=False)
    finally:
        sys.argv = argv
    assert isinstance(built.model.target, GANLatentTarget)
    (metrics,) = [c for c in built.trainer.callbacks if isinstance(c, ImageQualityMetrics)]
    assert isinstance(metrics.feature_extractor, ClassifierFeatures)
    assert metrics.feature_extractor.description.startswith("fashion-classifier penultimate")


def test_a_config_with_a_class_path_of_earlier_versions_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.yaml"
    text = _config(tmp_path).read_text()
    old.write_text(text.replace("lightning_ex2.gan.GAN", "lightning_ex2.targets.GAN"))
    code = _lightning_ex2(
        monkeypatch, "sample", "--config", old, "--ckpt_path", DATA / "sampler.ckpt",
        "--n_steps", 5, "--output_dir", tmp_path / "o",
    )  # fmt: skip
    assert code == 2 and not (tmp_path / "o").exists()
    (line,) = [s for s in capsys.readouterr().err.splitlines() if s.startswith("lightning-ex2: ")]
    assert "model.init_args.target: class_path 'lightning_ex2.targets.GANLatentTarget'" in line
    assert line.endswith("did you mean lightning_ex2.gan.GANLatentTarget?")
