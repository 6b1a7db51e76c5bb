"""The ``ChainDiagnostics`` callback (the figures it draws: ``tests/output/test_figures.py``)."""

from __future__ import annotations

import math
import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

from lightning_ex2.lightning.callbacks.diagnostics import ChainDiagnostics
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Gaussian

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- callback
class _NoSampler(torch.nn.Module):
    """A target without an exact sampler (wraps a Gaussian's log density)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.inner = Gaussian(torch.zeros(dim), 1.0)
        self.dim = dim

    def log_prob(self, x):
        return self.inner.log_prob(x)


class _Kernel(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proposal = GaussianProposal(dim, scale=2.0)


class RandomWalk(pl.LightningModule):
    """Random-walk Metropolis on ``n_chains`` chains; one batch = a block of chain indices."""

    def __init__(self, n_chains=32, dim=2, step=0.9, exact=True, block=None):
        super().__init__()
        self.automatic_optimization = False
        self.n_chains, self.dim, self.step, self.block = n_chains, dim, step, block or n_chains
        self.target = Gaussian(torch.zeros(dim), 1.0) if exact else _NoSampler(dim)
        self.kernel = _Kernel(dim)
        self.register_buffer("x", 3.0 * torch.randn(n_chains, dim))
        self.history: list[torch.Tensor] = []

    def train_dataloader(self):
        return DataLoader(torch.arange(self.n_chains), batch_size=self.block, shuffle=False)

    def configure_optimizers(self):
        return None

    def training_step(self, batch, batch_idx):
        x = self.x[batch]
        prop = x + self.step * torch.randn_like(x)
        log_alpha = self.target.log_prob(prop) - self.target.log_prob(x)
        accept = torch.rand_like(log_alpha).log() < log_alpha
        new = torch.where(accept[:, None], prop, x)
        self.x[batch] = new
        return {"x": new.detach(), "index": batch}

    def on_train_epoch_end(self):
        self.history.append(self.x.clone())


def _fit(tmp_path, module, callbacks, max_epochs):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|optimizer|bottleneck).*")
        trainer.fit(module)
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_chain_diagnostics_logs_to_tensorboard(tmp_path):
    torch.manual_seed(0)
    module = RandomWalk(n_chains=32, dim=2)
    cb = ChainDiagnostics(every_n_epochs=5, trace_length=50, n_reference=500)
    events = _fit(tmp_path, module, [cb], max_epochs=12)
    tags = events.Tags()
    for name in ("diagnostics/ess", "diagnostics/rhat", "diagnostics/emd"):
        assert name in tags["scalars"], tags["scalars"]
        values = [e.value for e in events.Scalars(name)]
        assert len(values) == 2  # epochs 5 and 10
        assert all(math.isfinite(v) for v in values)
    assert [e.value > 0 for e in events.Scalars("diagnostics/ess")] == [True, True]
    assert all(v.value >= 1.0 - 0.05 for v in events.Scalars("diagnostics/rhat"))
    assert len(events.Scalars("diagnostics/emd_exact")) == 1
    assert math.isfinite(events.Scalars("diagnostics/emd_exact")[0].value)
    # images line up with the scalars
    scalar_steps = [e.step for e in events.Scalars("diagnostics/ess")]
    for name in ("chains/scatter", "chains/trace"):
        assert name in tags["images"], tags["images"]
        imgs = events.Images(name)
        assert [im.step for im in imgs] == scalar_steps
        assert imgs[0].encoded_image_string[:8] == PNG_MAGIC
    assert scalar_steps == [4, 9]  # one batch per epoch: epoch-level step = batches - 1


def test_chain_diagnostics_buffer_blocks_and_no_rng_side_effects(tmp_path):
    # 4 batches (blocks) per sweep, only 10 of 24 chains tracked, ring buffer of 6 sweeps.
    torch.manual_seed(0)
    module = RandomWalk(n_chains=24, dim=3, block=6)
    cb = ChainDiagnostics(every_n_epochs=3, trace_length=6, max_chains=10, n_reference=200)
    _fit(tmp_path / "a", module, [cb], max_epochs=9)
    assert cb.n_sweeps == 9
    trace = cb.trace()
    expected = torch.stack([h[:10] for h in module.history[-6:]], dim=1)  # (chain, draw, dim)
    torch.testing.assert_close(trace, expected, rtol=0, atol=0)

    # Same seed without the callback: identical chains (the callback uses private generators).
    torch.manual_seed(0)
    plain = RandomWalk(n_chains=24, dim=3, block=6)
    _fit(tmp_path / "b", plain, [], max_epochs=9)
    torch.testing.assert_close(plain.x, module.x, rtol=0, atol=0)


def test_chain_diagnostics_without_exact_sampler_uses_proposal(tmp_path):
    torch.manual_seed(0)
    module = RandomWalk(n_chains=16, dim=1, exact=False)
    cb = ChainDiagnostics(every_n_epochs=4, trace_length=10, n_reference=100)
    events = _fit(tmp_path, module, [cb], max_epochs=4)
    tags = events.Tags()
    assert {"diagnostics/ess", "diagnostics/rhat"} <= set(tags["scalars"])
    assert "diagnostics/emd" not in tags["scalars"]
    assert {"chains/scatter", "chains/trace"} <= set(tags["images"])


def test_chain_diagnostics_warns_on_bad_outputs(tmp_path):
    class Bad(RandomWalk):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            return None

    cb = ChainDiagnostics(every_n_epochs=1, trace_length=4)
    with pytest.warns(UserWarning, match="ChainDiagnostics"):
        _fit(tmp_path, Bad(n_chains=4), [cb], max_epochs=2)
    assert cb.n_sweeps == 0 and cb.trace() is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"trace_length": 3}, "trace_length"),
        ({"max_chains": 0}, "max_chains"),
        ({"n_reference": -1}, "n_reference"),
        ({"dims": (0,)}, "dims"),
        ({"dims": (1, 1)}, "dims"),
        ({"dims": (0, -1)}, "dims"),
        ({"log_figures": "yes"}, "log_figures"),
        ({"every_n_epochs": 2.5}, "every_n_epochs"),
    ],
)
def test_chain_diagnostics_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ChainDiagnostics(**kwargs)


def test_chain_diagnostics_state_dict_is_empty():
    cb = ChainDiagnostics()
    assert cb.state_dict() == {}
    cb.load_state_dict({})
