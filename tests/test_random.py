"""The multi-stream CPU generator: reproducible whatever the thread count, checkpointable,
and drawing the right distribution."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch

import lightning_ex2 as lx
from lightning_ex2.kernels import base as kernel_base
from lightning_ex2.random import StreamGenerator, make_generator, rand, randn


@pytest.fixture
def threads():
    """Set torch's thread count inside a test; restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _gen(seed: int = 0, **kwargs) -> StreamGenerator:
    return StreamGenerator(**kwargs).manual_seed(seed)


@pytest.mark.parametrize("draw", [randn, rand])
def test_same_seed_same_draws_on_1_2_and_4_threads(threads, draw):
    shape = (7, 13, 101)  # 9191 numbers: 8 chunks of >= 1000, uneven bounds
    out = {}
    for n in (1, 2, 4):
        threads(n)
        g = _gen(5, n_streams=8, min_chunk=1000)
        out[n] = torch.cat([draw(shape, generator=g).flatten() for _ in range(3)])
    assert g.n_chunks(7 * 13 * 101) == 8
    assert torch.equal(out[1], out[2]) and torch.equal(out[1], out[4])
    other = _gen(6, n_streams=8, min_chunk=1000)
    assert not torch.equal(out[1][:9191], draw(shape, generator=other).flatten())


def test_default_layout_uses_streams_for_the_big_draws(threads):
    """An i-SIR-sized draw [100, 199, 100] is cut into all 32 default streams."""
    g = StreamGenerator()
    assert g.n_chunks(100 * 199 * 100) == 32 and g.n_chunks(100 * 100) == 1
    threads(1)
    a = randn((100, 199, 100), generator=_gen(1))
    threads(2)
    b = randn((100, 199, 100), generator=_gen(1))
    assert torch.equal(a, b)
    # the streams are not the main stream, and they differ from each other
    plain = torch.randn((100, 199, 100), generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, plain)
    chunk = a.numel() // 32
    assert not torch.equal(a.flatten()[:100], a.flatten()[chunk : chunk + 100])


def test_small_draws_equal_a_plain_generator():
    """Below two chunks the main stream draws, exactly as torch.Generator with the seed."""
    g, ref = _gen(11), torch.Generator().manual_seed(11)
    assert torch.equal(randn((50, 20), generator=g), torch.randn((50, 20), generator=ref))
    assert torch.equal(rand((3,), generator=g), torch.rand((3,), generator=ref))
    # and torch's own functions accept it as the generator they are (main stream)
    assert torch.equal(torch.randn(4, generator=g), torch.randn(4, generator=ref))


def test_get_state_set_state_round_trip_keeps_every_stream():
    g = _gen(3, n_streams=4, min_chunk=100)
    randn((1000,), generator=g)  # advance main and streams
    state = g.get_state()
    assert state.dtype == torch.uint8 and state.ndim == 1
    assert state.numel() == 5 * torch.Generator().get_state().numel()
    first = (randn((1000,), generator=g), rand((20,), generator=g), randn((800,), generator=g))
    h = _gen(99, n_streams=4, min_chunk=100)
    h.set_state(state.clone())
    second = (randn((1000,), generator=h), rand((20,), generator=h), randn((800,), generator=h))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    # a copy with a storage offset (a row of a stacked checkpoint tensor) also works
    stacked = torch.stack([state, state])
    h.set_state(stacked[1])
    assert torch.equal(randn((1000,), generator=h), first[0])


def test_set_state_accepts_a_single_generator_state_and_rejects_others():
    g = _gen(0, n_streams=4, min_chunk=100)
    g.set_state(torch.Generator().manual_seed(8).get_state())
    assert g.initial_seed() == 8
    assert torch.equal(
        randn((1000,), generator=g), randn((1000,), generator=_gen(8, n_streams=4, min_chunk=100))
    )
    with pytest.raises(ValueError, match="new_state"):
        g.set_state(torch.zeros(10, dtype=torch.uint8))
    with pytest.raises(TypeError, match="new_state"):
        g.set_state(torch.zeros(10))


def test_seed_manual_seed_and_copies():
    g = StreamGenerator(n_streams=2, min_chunk=10)
    assert g.manual_seed(4) is g and g.initial_seed() == 4
    s = g.seed()
    assert g.initial_seed() == s
    h = StreamGenerator(n_streams=2, min_chunk=10).manual_seed(s)
    assert torch.equal(randn((100,), generator=g), randn((100,), generator=h))
    for c in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert isinstance(c, StreamGenerator) and c.n_streams == 2
        assert torch.equal(randn((100,), generator=c), randn((100,), generator=g.__deepcopy__({})))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_streams"):
        StreamGenerator(n_streams=0)
    with pytest.raises(ValueError, match="min_chunk"):
        StreamGenerator(min_chunk=1.5)
    with pytest.raises(ValueError, match="device"):
        StreamGenerator("meta")


def test_make_generator_picks_by_device():
    assert isinstance(make_generator("cpu"), StreamGenerator)
    if torch.cuda.is_available():
        g = make_generator("cuda")
        assert type(g) is torch.Generator and g.device.type == "cuda"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_moments_within_standard_errors(dtype):
    """Mean, variance, 4th moment and lag/chunk-boundary correlation of 400k draws."""
    n = 400_000
    g = _gen(2, n_streams=16, min_chunk=1000)
    z = randn((n,), generator=g, dtype=dtype).double()
    assert z.dtype == torch.float64 and g.n_chunks(n) == 16
    tol = 5.0  # standard errors
    assert abs(z.mean()) < tol / math.sqrt(n)
    assert abs(z.var() - 1.0) < tol * math.sqrt(2.0 / n)
    assert abs(z.pow(4).mean() - 3.0) < tol * math.sqrt(96.0 / n)  # Var z^4 = 105 - 9
    # independent chunks: correlation between chunk 0 and chunk 1, position by position
    c = n // 16
    corr = (z[:c] * z[c : 2 * c]).mean()
    assert abs(corr) < tol / math.sqrt(c)
    u = rand((n,), generator=g, dtype=dtype).double()
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(u.mean() - 0.5) < tol * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < tol * math.sqrt(1 / 180 / n)  # Var (u - 1/2)^2 = 1/180


def test_kernel_helpers_and_proposals_dispatch_to_the_streams():
    like = torch.zeros(1, dtype=torch.float64)
    a = kernel_base.randn((40, 50), like, _gen(1, n_streams=4, min_chunk=100))
    b = randn((40, 50), generator=_gen(1, n_streams=4, min_chunk=100), dtype=torch.float64)
    assert a.dtype == torch.float64 and torch.equal(a, b)
    assert not torch.equal(a, torch.randn((40, 50), generator=torch.Generator().manual_seed(1)))
    q = lx.proposals.GaussianProposal(5, scale=2.0)
    x, _ = q.sample_and_log_prob((40, 10), _gen(1, n_streams=4, min_chunk=100))
    z = randn((40, 10, 5), generator=_gen(1, n_streams=4, min_chunk=100))
    assert torch.allclose(x, 2.0 * z)


def test_sample_isir_same_chains_on_1_and_2_threads(threads):
    """lx.sample runs on a StreamGenerator: the run is a function of the seed only."""
    target = lx.targets.Funnel(dim=20)
    runs = []
    for n in (1, 2):
        threads(n)
        kernel = lx.ISIR(lx.proposals.GaussianProposal(20, scale=3.0), n_particles=200)
        runs.append(lx.sample(target, kernel, n_chains=20, n_steps=5, seed=7))
    assert torch.equal(runs[0].samples, runs[1].samples)


def test_module_exact_resume_restores_every_stream(tmp_path):
    """MCMCSampler + i-SIR with draws big enough for two streams: fit 6 == fit 3, resume to 6."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    from lightning_ex2.lightning import ChainDataModule, MCMCSampler
    from lightning_ex2.lightning.trainer import Ex2Trainer

    def trainer(root, **kwargs):
        return Ex2Trainer(
            accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=root, **kwargs,
        )  # fmt: skip

    def model():
        target = lx.targets.Gaussian(torch.ones(20), torch.eye(20))
        kernel = lx.ISIR(lx.proposals.GaussianProposal(20, scale=2.0), n_particles=400)
        return MCMCSampler(target, kernel, n_chains=12, seed=4)

    straight = model()
    trainer(tmp_path / "a", max_steps=6, enable_checkpointing=False).fit(
        straight, datamodule=ChainDataModule(n_chains=12)
    )
    assert isinstance(straight.generator, StreamGenerator)
    assert straight.generator.n_chunks(12 * 399 * 20) == 2
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    first = model()
    trainer(tmp_path / "b", max_steps=3, callbacks=[ckpt]).fit(
        first, datamodule=ChainDataModule(n_chains=12)
    )
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["lightning_ex2_rng"].numel() == first.generator.get_state().numel()
    resumed = model()
    trainer(tmp_path / "b", max_steps=6, enable_checkpointing=False).fit(
        resumed,
        datamodule=ChainDataModule(n_chains=12),
        ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"),
    )
    assert not torch.equal(first.chain_x, straight.chain_x)
    assert torch.equal(resumed.chain_x, straight.chain_x)
    assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_randn_rows_same_numbers_every_row_once(threads):
    """randn_rows gives randn's numbers; row_fn sees every row exactly once, rows that
    straddle chunks and the drawing threads' ranges included (D = 7 does not divide them)."""
    from lightning_ex2.random import StreamGenerator, randn, randn_rows

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seen = torch.zeros(30_011, dtype=torch.int64)

        def mark(rows, a, b):
            assert rows.shape[0] == b - a
            seen[a:b] += 1
            rows.mul_(2.0)

        g = StreamGenerator(min_chunk=1000).manual_seed(3)
        x = randn_rows((30_011, 7), mark, generator=g)
        z = randn((30_011, 7), generator=StreamGenerator(min_chunk=1000).manual_seed(3))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(x, 2.0 * z)
    assert bool((seen == 1).all())
