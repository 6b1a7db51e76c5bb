"""``sample`` as a straight pipe: the output set checked once, the checkpoint read once,
a pure function writes a full set from given draws (no Trainer), ``validate``/``test``
share one helper, the checks read models through typed accessors, and Lightning's
private members are touched only in ``lightning/compat.py``."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar

import lightning_ex2 as lx
from lightning_ex2.checks import memory_message, sampler_parts, setting_tensors
from lightning_ex2.lightning import ChainDataModule, MCMCSampler
from lightning_ex2.lightning.compat import (
    checkpoint_preloaded,
    cli_parsers,
    parser_actions,
    progress_bar_leaves,
    progress_bar_should_update,
)
from lightning_ex2.lightning.trainer import Ex2Trainer
from lightning_ex2.output import files as io
from lightning_ex2.output.files import OutputSet, load_output_set
from lightning_ex2.output.writer import (
    Draws,
    OutputOptions,
    RunMeta,
    SamplePlan,
    build_summary,
    write_output_set,
)
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Gaussian

PACKAGE = Path(lx.__file__).resolve().parent


def _model(seed: int = 0) -> MCMCSampler:
    target = Gaussian(torch.tensor([1.0, -1.0]), torch.eye(2))
    kernel = lx.Ex2MCMC(GaussianProposal(2, scale=2.0), n_particles=6, step_size=0.4)
    return MCMCSampler(target, kernel, n_chains=4, seed=seed)


def _trainer(tmp_path: Path, **kwargs) -> Ex2Trainer:
    kwargs.setdefault("enable_checkpointing", False)
    return Ex2Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, **kwargs,
    )  # fmt: skip


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """``last.ckpt`` of a 3-step fit."""
    folder = tmp_path / "fit" / "checkpoints"
    trainer = _trainer(
        tmp_path, max_steps=3, enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=folder, save_last=True)],
    )  # fmt: skip
    trainer.fit(_model(), datamodule=ChainDataModule(n_chains=4))
    return folder / "last.ckpt"


def _sample(trainer: Ex2Trainer, out: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the verdict is tested elsewhere
        return trainer.sample(
            _model(), datamodule=ChainDataModule(n_chains=4), n_steps=12,
            output_dir=str(out), progress=False, **kwargs,
        )  # fmt: skip


def _loads_of(path: Path, monkeypatch) -> list[str]:
    """Record every ``torch.load`` of ``path`` (by name, or through an open file)."""
    calls: list[str] = []
    real = torch.load
    target = path.resolve()

    def load(f, *args, **kwargs):
        name = f if isinstance(f, str | Path) else getattr(f, "path", getattr(f, "name", None))
        if name is not None and Path(str(name)).resolve() == target:
            calls.append(inspect.stack()[1].function)
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    return calls


# ------------------------------------------------------------------ once, not twice
def test_sample_reads_its_checkpoint_file_once(tmp_path, checkpoint, monkeypatch):
    calls = _loads_of(checkpoint, monkeypatch)
    summary = _sample(_trainer(tmp_path), tmp_path / "out", ckpt_path=str(checkpoint))
    assert summary is not None and summary["complete"] is True
    assert len(calls) == 1, calls  # the preflight's read; Lightning restores from it


def test_the_one_read_gives_the_draws_of_lightnings_own_read(tmp_path, checkpoint, monkeypatch):
    """Restored from the checkpoint the preflight read, or by Lightning reading the file
    itself: the same draws, bit for bit."""
    _sample(_trainer(tmp_path), tmp_path / "once", ckpt_path=str(checkpoint))
    monkeypatch.setattr(
        "lightning_ex2.lightning.trainer.checkpoint_preloaded", lambda *a: contextlib.nullcontext()
    )
    calls = _loads_of(checkpoint, monkeypatch)
    _sample(_trainer(tmp_path), tmp_path / "twice", ckpt_path=str(checkpoint))
    assert len(calls) == 2, calls  # the old way: the preflight's read and Lightning's
    once, twice = (np.load(tmp_path / d / "samples.npz") for d in ("once", "twice"))
    assert once.files == twice.files
    for name in once.files:
        np.testing.assert_array_equal(once[name], twice[name])


def test_override_ckpt_puts_the_configs_target_into_the_one_read(tmp_path, checkpoint):
    """--override_ckpt: the config's target tensors are what the run uses (no reload)."""
    model = _model()
    with torch.no_grad():
        model.target.loc.fill_(5.0)  # another target than the checkpoint's
    trainer = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.sample(
            model, datamodule=ChainDataModule(n_chains=4), ckpt_path=str(checkpoint),
            n_steps=4, output_dir=str(tmp_path / "out"), progress=False, override_ckpt=True,
        )  # fmt: skip
    assert torch.equal(model.target.loc, torch.full((2,), 5.0))


def test_output_set_is_checked_once_before_any_work(tmp_path, monkeypatch):
    """One check (taking the folder's lock: a check, the lock, the check again under
    it), before the preflight and the steps; the writer never checks again (io's own
    ``begin`` re-check at creation aside)."""
    order: list[str] = []
    real_check, real_lock = OutputSet.check, OutputSet.lock

    def check(self):
        caller = inspect.stack()[1].function
        if caller not in ("begin", "lock"):
            order.append("check")
        return real_check(self)

    def lock(self):
        order.append("check")
        return real_lock(self)

    monkeypatch.setattr(OutputSet, "check", check)
    monkeypatch.setattr(OutputSet, "lock", lock)
    real_predict = MCMCSampler.predict_step

    def predict_step(self, *args, **kwargs):
        order.append("step")
        return real_predict(self, *args, **kwargs)

    monkeypatch.setattr(MCMCSampler, "predict_step", predict_step)
    _sample(_trainer(tmp_path), tmp_path / "out")
    assert order == ["check", "step"], order


def test_writer_gets_its_plan_at_construction_and_no_callback_writes_into_another(tmp_path):
    """The trainer builds the run's writer with a plan (config text, scorers, lengths);
    the writer settings in ``callbacks`` are read, never written."""
    from lightning_ex2.lightning import SampleWriter

    settings = SampleWriter(OutputOptions(save_figures=False, n_reference=50))
    before = settings.options
    trainer = _trainer(tmp_path, callbacks=[settings])
    seen = {}
    real = SampleWriter.on_predict_epoch_end

    def spy(self, trainer, pl_module):
        seen["plan"] = self.plan
        return real(self, trainer, pl_module)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SampleWriter, "on_predict_epoch_end", spy)
        _sample(trainer, tmp_path / "out", thin=3)
    plan = seen["plan"]
    assert isinstance(plan, SamplePlan)
    assert (plan.n_steps, plan.thin, plan.n_draws) == (12, 3, 4)
    assert plan.options.save_figures is False and plan.options.n_reference == 50
    assert settings.plan is None and settings.result is None  # untouched
    assert settings.options is before
    assert settings in trainer.callbacks  # put back after the run
    assert not (tmp_path / "out" / "scatter.png").exists()


# ------------------------------------------------------------------ the pure writer
def _draws(n_chains: int = 3, n_draws: int = 20, dim: int = 2) -> Draws:
    g = np.random.default_rng(0)
    samples = g.normal(size=(n_chains, n_draws, dim)).astype(np.float32)
    return Draws(
        samples=samples,
        log_prob=-0.5 * (samples**2).sum(-1),
        chain_index=np.arange(n_chains, dtype=np.int64),
        info={
            "accept_global": np.full(n_chains, 0.5, np.float32),
            "accept_local": np.full(n_chains, np.nan, np.float32),
            "particle_ess": np.full(n_chains, 3.0, np.float32),
            "nonfinite": np.array([0.0, 2.0, 1.0], np.float32),
        },
        draw_stats={"step_size": np.full((n_chains, n_draws), 0.25, np.float32)},
        starts=None,
        wall_seconds=1.5,
        world_size=1,
        image_metrics={},
    )


@pytest.mark.parametrize("per_draw", [True, False])
def test_the_summary_gives_the_step_size_once(tmp_path, per_draw):
    """Per chain (info) and per draw (sample_stats): one key, ``step_size``."""
    draws = _draws()
    info = {**draws.info, "step_size": np.array([0.2, 0.3, 0.4], np.float32)}
    stats = draws.draw_stats if per_draw else {}
    draws = draws._replace(info=info, draw_stats=stats)
    plan = SamplePlan(OutputSet(tmp_path / "out"), n_steps=40, thin=2)
    meta = RunMeta("MALA", "Gaussian", "MCMCSampler", 7, torch.device("cpu"))
    summary, _, _ = build_summary(draws, plan, Gaussian(torch.zeros(2), torch.eye(2)), meta)
    assert [k for k in summary if "step_size" in k] == ["step_size"]
    assert summary["step_size"] == pytest.approx(0.25 if per_draw else 0.3)


def test_write_output_set_writes_a_full_set_without_a_trainer(tmp_path):
    out = tmp_path / "out"
    plan = SamplePlan(OutputSet(out), n_steps=40, thin=2, config_text="seed: 1\n")
    target = Gaussian(torch.zeros(2), torch.eye(2))
    meta = RunMeta("ISIR", "Gaussian", "MCMCSampler", 7, torch.device("cpu"))
    result = write_output_set(_draws(), plan, target, meta)
    assert result.written == out and result.complete is True
    assert result.replaced_complete is False
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["samples.npz", "samples.nc", "config.yaml", "summary.json",
                            "scatter.png", "trace.png", "rank.png", "pair.png",
                            "manifest.json"])  # fmt: skip
    assert io.is_output_set(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 7 and summary["n_steps"] == 40
    assert summary["complete"] is True and summary["stopped_by"] is None
    assert summary["nonfinite"] == 3 and summary["step_size"] == 0.25
    assert summary["accept_global_mean"] == 0.5 and summary["accept_local_mean"] is None
    assert "emd" in summary  # the Gaussian has an exact sampler
    assert (out / "config.yaml").read_text() == "seed: 1\n"
    npz = np.load(out / "samples.npz")
    assert list(npz.files) == ["samples", "log_prob", "chain_index", "accept_global",
                               "accept_local", "particle_ess", "nonfinite"]  # fmt: skip
    assert npz["nonfinite"].dtype == np.int64
    data = load_output_set(out)
    np.testing.assert_array_equal(np.asarray(data.samples), _draws().samples)


def test_write_output_set_of_a_stopped_run_is_partial_and_names_the_signal(tmp_path):
    plan = SamplePlan(
        OutputSet(tmp_path / "out"), n_steps=100, options=OutputOptions(save_figures=False)
    )
    meta = RunMeta("ISIR", "Gaussian", "MCMCSampler", 0, torch.device("cpu"))
    result = write_output_set(
        _draws(n_draws=20), plan, Gaussian(torch.zeros(2), torch.eye(2)), meta,
        stopped_by="SIGTERM",
    )  # fmt: skip
    assert result.complete is False
    assert result.summary is not None and result.summary["stopped_by"] == "SIGTERM"
    assert not (tmp_path / "out" / "scatter.png").exists()


def test_write_output_set_leaves_nothing_when_a_write_fails(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("lightning_ex2.output.writer.save_json", crash)
    plan = SamplePlan(
        OutputSet(tmp_path / "out"), n_steps=20, options=OutputOptions(save_figures=False)
    )
    meta = RunMeta("ISIR", "Gaussian", "MCMCSampler", 0, torch.device("cpu"))
    with pytest.raises(OSError, match="disk full"):
        write_output_set(_draws(), plan, Gaussian(torch.zeros(2), torch.eye(2)), meta)
    assert not (tmp_path / "out").exists()  # the staging folder is gone, and the folder


# ------------------------------------------------------------------ validate / test
def test_validate_and_test_share_one_helper(tmp_path, monkeypatch):
    assert Ex2Trainer.validate.__code__ is Ex2Trainer.test.__code__
    for stage in ("validate", "test"):
        params = list(inspect.signature(getattr(Ex2Trainer, stage)).parameters)
        assert params == ["self", "model", "dataloaders", "ckpt_path", "verbose",
                          "datamodule", "override_ckpt", "trust_checkpoint", "kwargs"]  # fmt: skip
    calls = []
    real = Ex2Trainer._evaluate

    def spy(self, run, model, datamodule, ckpt_path, override_ckpt, trust, **kwargs):
        calls.append(run.__name__)
        return real(self, run, model, datamodule, ckpt_path, override_ckpt, trust, **kwargs)

    monkeypatch.setattr(Ex2Trainer, "_evaluate", spy)
    trainer = _trainer(tmp_path, limit_val_batches=1, limit_test_batches=1)
    model = _model()
    dm = ChainDataModule(n_chains=4)
    (val,) = trainer.validate(model, datamodule=dm, verbose=False)
    (test,) = trainer.test(model, datamodule=dm, verbose=False)
    assert calls == ["validate", "test"]
    assert set(val) and set(test)


# ------------------------------------------------------------------ typed accessors
def test_sampler_parts_reads_samplers_and_nothing_else():
    model = _model()
    parts = sampler_parts(model)
    assert parts is not None
    assert (parts.dim, parts.n_chains, parts.n_particles) == (2, 4, 6)
    assert parts.uses_grad is True and parts.dtype == torch.float32
    assert sampler_parts(pl.LightningModule()) is None
    assert setting_tensors(pl.LightningModule()) == {}
    message = memory_message(MemoryError(), model, ChainDataModule(n_chains=4, chains_per_batch=2))
    assert "C=2 chains per step (of 4) x N=6 particles x D=2" in message


def test_runcheck_has_no_getattr_or_hasattr():
    source = (PACKAGE / "checks.py").read_text()
    assert not re.findall(r"\b(getattr|hasattr)\(", source)


# ------------------------------------------------------------------ Lightning privates
#: private members of Lightning objects lightning-ex2 may use, and only in lightning/compat.py
_LIGHTNING_PRIVATE = re.compile(
    r"\._(should_update|leave|batches_that_stepped|parse_ckpt_path|checkpoint_connector|"
    r"checkpoint_io|launcher|loaded_checkpoint|results|logger_connector|signal_connector)\b"
    r"|\b(trainer|strategy|loop|launcher)\._[a-z]"
)


def test_lightnings_private_members_only_in_lightning_compat():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "lightning" / "compat.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _LIGHTNING_PRIVATE.search(code) and "``" not in code:
                found.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert not found, found


def test_progress_bar_privates_are_still_there():
    """progress_bar_should_update/progress_bar_leaves read TQDMProgressBar._should_update
    and _leave (no public twins): a rename fails here."""
    bar = TQDMProgressBar(refresh_rate=5, leave=True)
    assert callable(bar._should_update), "Lightning renamed TQDMProgressBar._should_update"
    assert isinstance(bar._leave, bool), "Lightning renamed TQDMProgressBar._leave"
    assert progress_bar_should_update(bar, 5, 100) and progress_bar_should_update(bar, 100, 100)
    assert not progress_bar_should_update(bar, 3, 100)
    assert progress_bar_leaves(bar) and not progress_bar_leaves(TQDMProgressBar())


def test_checkpoint_preloaded_hands_the_dict_over_once(tmp_path, checkpoint, monkeypatch):
    trainer = _trainer(tmp_path)
    given = torch.load(checkpoint, weights_only=True)
    calls = _loads_of(checkpoint, monkeypatch)
    before = trainer.strategy.checkpoint_io
    with checkpoint_preloaded(trainer, str(checkpoint), given):
        io_ = trainer.strategy.checkpoint_io
        assert io_.load_checkpoint(str(checkpoint)) is given
        assert calls == []
        assert io_.load_checkpoint(str(checkpoint)) is not given  # a second load reads
        assert len(calls) == 1
    assert trainer.strategy.checkpoint_io is before


def test_cli_parsers_find_every_subcommands_options():
    """cli_parsers/parser_actions read jsonargparse's _subcommands_action and argparse's
    _actions (the closest-option hints in parse errors): a rename fails here."""
    from pytorch_lightning.cli import LightningArgumentParser

    root = LightningArgumentParser()
    sub = LightningArgumentParser()
    sub.add_argument("--n_steps", type=int, default=1)
    root.add_subcommands().add_subcommand("sample", sub)
    parsers = cli_parsers(root)
    assert len(parsers) == 2, "jsonargparse renamed _subcommands_action/_name_parser_map"
    flags = {f for p in parsers for a in parser_actions(p) for f in a.option_strings}
    assert "--n_steps" in flags, "argparse renamed _actions"


def _converge_files(record) -> list[str]:
    return [Path(w.filename).name for w in record.list if "have not converged" in str(w.message)]


def test_the_convergence_warning_points_at_the_users_line_never_at_lightnings(tmp_path):
    """Called from user code, the warning names that line; called by LightningCLI (the
    ``sample`` command), it names the trainer's line, not a file inside Lightning."""
    trainer = _trainer(tmp_path)
    call = (
        "trainer.sample(model, datamodule=ChainDataModule(n_chains=4), n_steps=12,"
        " output_dir=out, progress=False)"
    )
    scope = {"trainer": trainer, "model": _model(), "ChainDataModule": ChainDataModule}
    with pytest.warns(RuntimeWarning, match="have not converged") as user:
        exec(compile(call, __file__, "exec"), {**scope, "out": str(tmp_path / "a")})
    assert _converge_files(user) == [Path(__file__).name]
    lightning_cli = str(Path(pl.__file__).parent / "cli.py")  # as if LightningCLI called it
    scope["model"] = _model()
    with pytest.warns(RuntimeWarning, match="have not converged") as cli:
        exec(compile(call, lightning_cli, "exec"), {**scope, "out": str(tmp_path / "b")})
    assert _converge_files(cli) == ["trainer.py"]
