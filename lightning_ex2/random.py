"""Parallel, reproducible random draws on CPU: a multi-stream ``torch.Generator``.

torch's CPU generator is a single mt19937 stream, so filling the proposal's
``[C, N, D]`` normals of an i-SIR / Ex2MCMC / FlEx2MCMC step runs on one core
whatever ``torch.get_num_threads()`` says. :class:`StreamGenerator` is a
``torch.Generator`` (its own state is the *main* stream, used for small draws
and by any code that hands it to ``torch.randn`` directly) that also owns
``n_streams`` further independent streams. A large draw through :func:`randn` /
:func:`rand` is cut into contiguous chunks of the flattened output, chunk ``k``
filled by stream ``k``; a small thread pool fills several chunks at once (torch
releases the GIL inside ``normal_``/``uniform_``).

The layout is fixed by the generator and the shape of the draw, never by the
thread count: the number of chunks is ``min(n_streams, numel // min_chunk)``
(one chunk, i.e. the main stream, below ``2 * min_chunk`` numbers), and the
stream seeds derive from the run's seed. So the same seed gives bit-for-bit the
same draws on 1 thread or 32; threads only decide how many chunks are filled at
the same time. Draws of fewer than ``2 * min_chunk`` numbers are exactly those of
a plain ``torch.Generator`` with the same seed.

:meth:`StreamGenerator.get_state` returns *one* ``uint8`` tensor holding every
stream (main first), so code that checkpoints ``generator.get_state()`` keeps
them all; :meth:`~StreamGenerator.set_state` takes it back (or a single
``torch.Generator`` state, which sets the main stream and re-derives the others
from its seed).

On CUDA the single device generator stays: :func:`make_generator` returns a
``torch.Generator`` there (one device-side Philox stream already runs in
parallel).

Example:
    >>> g = StreamGenerator().manual_seed(0)
    >>> x = randn((100, 199, 10), generator=g)
    >>> torch.equal(x, randn((100, 199, 10), generator=StreamGenerator().manual_seed(0)))
    True
    >>> g2 = StreamGenerator().manual_seed(1)
    >>> g2.set_state(g.get_state())  # every stream travels
    >>> torch.equal(randn((4, 50_000), generator=g), randn((4, 50_000), generator=g2))
    True
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DEFAULT_MIN_CHUNK",
    "DEFAULT_STREAMS",
    "StreamGenerator",
    "derived_seed",
    "make_generator",
    "rand",
    "randn",
    "randn_rows",
]

#: streams besides the main one: the most chunks (and threads) one draw can use
DEFAULT_STREAMS = 32
#: numbers per chunk at least (2^15 normals take ~0.1 ms on one core)
DEFAULT_MIN_CHUNK = 1 << 15

_STATE_BYTES = int(torch.Generator().get_state().numel())  # one mt19937 state

#: ``row_fn(rows [R, D], start, stop)`` of :func:`randn_rows` (may modify ``rows``)
RowFn = Callable[[Tensor, int, int], None]


def stream_seed(seed: int, k: int) -> int:
    """Seed of stream ``k`` derived from the run's seed ``seed`` (a 63-bit integer)."""
    digest = hashlib.blake2b(f"lightning_ex2-stream:{seed}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


# ------------------------------------------------------------------ thread pool
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _get_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool with at least ``workers`` threads (grown on demand)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lx-rng")
            _pool_size = workers
        return _pool


def _reset_pool_after_fork() -> None:  # a forked child has the pool object but no threads
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


# ------------------------------------------------------------------ generator
class StreamGenerator(torch.Generator):
    """A CPU ``torch.Generator`` plus ``n_streams`` independent streams for large draws.

    Drop-in where a ``torch.Generator`` is used: ``device``, ``manual_seed(s)``
    (returns ``self``), ``seed()``, ``initial_seed()``, ``get_state()`` (one
    ``uint8`` tensor ``[(n_streams + 1) * 5056]``, all streams) and
    ``set_state(t)``; ``torch.randn(..., generator=g)`` draws from the main stream.
    Use :func:`randn` / :func:`rand` (or :meth:`normal_` / :meth:`uniform_`) for
    draws that may use the streams.

    Args:
        device: must be the CPU.
        n_streams: number of extra streams (``>= 1``); part of the run's layout.
        min_chunk: fewest numbers per chunk (``>= 1``); part of the run's layout.
    """

    def __new__(cls, device: Any = "cpu", *args: Any, **kwargs: Any) -> StreamGenerator:
        return super().__new__(cls, "cpu")  # __init__ rejects any other device

    def __init__(
        self,
        device: str | torch.device = "cpu",
        n_streams: int = DEFAULT_STREAMS,
        min_chunk: int = DEFAULT_MIN_CHUNK,
    ) -> None:
        if torch.device(device).type != "cpu":
            raise ValueError(
                f"StreamGenerator: `device` must be the CPU, got {device!r}; "
                "use make_generator(device) for a torch.Generator on other devices"
            )
        for name, value in (("n_streams", n_streams), ("min_chunk", min_chunk)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"StreamGenerator: `{name}` must be an integer >= 1, got {value!r}"
                )
        self.n_streams = n_streams
        self.min_chunk = min_chunk
        self._streams = [torch.Generator() for _ in range(n_streams)]
        self._derive_streams(super().initial_seed())

    def _derive_streams(self, seed: int) -> None:
        for k, g in enumerate(self._streams):
            g.manual_seed(stream_seed(seed, k))

    # -------------------------------------------------- torch.Generator API
    def manual_seed(self, seed: int) -> StreamGenerator:  # type: ignore[override]
        """Seed the main stream with ``seed`` and the others with seeds derived from it."""
        super().manual_seed(seed)
        self._derive_streams(super().initial_seed())
        return self

    def seed(self) -> int:
        """A non-deterministic seed for all streams (as ``torch.Generator.seed``); returns it."""
        s = super().seed()
        self._derive_streams(s)
        return s

    def get_state(self) -> Tensor:
        """All streams' states, main first: ``uint8 [(n_streams + 1) * 5056]``."""
        states = [super().get_state()] + [g.get_state() for g in self._streams]
        return torch.cat(states)

    def set_state(self, new_state: Tensor) -> None:  # type: ignore[override]
        """Restore :meth:`get_state`'s tensor; a single ``torch.Generator`` state sets the
        main stream and re-derives the others from its seed."""
        if not isinstance(new_state, Tensor) or new_state.dtype != torch.uint8:
            raise TypeError("StreamGenerator.set_state: `new_state` must be a uint8 tensor")
        flat = new_state.detach().reshape(-1).cpu()
        n = flat.numel()
        if n == _STATE_BYTES:
            super().set_state(flat.clone())
            self._derive_streams(super().initial_seed())
            return
        if n != _STATE_BYTES * (self.n_streams + 1):
            raise ValueError(
                f"StreamGenerator.set_state: `new_state` has {n} bytes; expected "
                f"{_STATE_BYTES * (self.n_streams + 1)} ({self.n_streams} streams + main) or "
                f"{_STATE_BYTES} (one torch.Generator state)"
            )
        # fresh copies: set_state on a view with a storage offset is not safe
        parts = [
            flat[i * _STATE_BYTES : (i + 1) * _STATE_BYTES].clone()
            for i in range(n // _STATE_BYTES)
        ]
        super().set_state(parts[0])
        for g, s in zip(self._streams, parts[1:], strict=True):
            g.set_state(s)

    def __reduce__(self) -> tuple[Callable[..., StreamGenerator], tuple[Any, ...]]:
        return _rebuild, (self.n_streams, self.min_chunk, self.get_state())

    def __deepcopy__(self, memo: dict[int, Any]) -> StreamGenerator:
        return _rebuild(self.n_streams, self.min_chunk, self.get_state())

    def __repr__(self) -> str:
        return f"StreamGenerator(n_streams={self.n_streams}, min_chunk={self.min_chunk})"

    # -------------------------------------------------- parallel fills
    def n_chunks(self, numel: int) -> int:
        """Chunks (streams) a draw of ``numel`` numbers uses; 1 means the main stream."""
        return max(1, min(self.n_streams, numel // self.min_chunk))

    def normal_(self, out: Tensor) -> Tensor:
        """Fill CPU tensor ``out`` (any shape) with ``N(0, 1)`` draws in place; returns it."""
        return self._fill(out, "normal_")

    def uniform_(self, out: Tensor) -> Tensor:
        """Fill CPU tensor ``out`` (any shape) with ``U[0, 1)`` draws in place; returns it."""
        return self._fill(out, "uniform_")

    def _fill(self, out: Tensor, method: str, row_fn: RowFn | None = None) -> Tensor:
        """Fill ``out`` in the generator's layout. With ``row_fn``, call
        ``row_fn(rows, start, stop)`` on each run of complete rows of ``out.view(-1, D)``
        (``D = out.shape[-1]``) right after they are drawn, while they are in cache;
        the draws are the same numbers whether or not ``row_fn`` is given."""
        if out.device.type != "cpu":
            raise ValueError(f"StreamGenerator: cannot fill a tensor on {out.device}")
        numel = out.numel()
        chunks = self.n_chunks(numel)
        if chunks == 1 or not out.is_contiguous():
            getattr(out, method)(generator=self)
            if row_fn is not None and numel:
                rows = out.view(-1, out.shape[-1])
                row_fn(rows, 0, rows.shape[0])
            return out
        flat = out.view(-1)
        width = out.shape[-1] if out.ndim else 1
        rows = flat.view(-1, width)
        bounds = [numel * k // chunks for k in range(chunks + 1)]

        def fill(first: int, last: int) -> None:
            done = -(-bounds[first] // width)  # first row that starts inside this range
            for k in range(first, last):
                getattr(flat[bounds[k] : bounds[k + 1]], method)(generator=self._streams[k])
                complete = bounds[k + 1] // width
                if row_fn is not None and complete > done:
                    row_fn(rows[done:complete], done, complete)
                    done = complete

        workers = max(1, min(torch.get_num_threads(), chunks))
        if workers == 1:
            fill(0, chunks)
            return out
        split = [chunks * w // workers for w in range(workers + 1)]
        pool = _get_pool(workers - 1)
        futures = [pool.submit(fill, split[w], split[w + 1]) for w in range(1, workers)]
        try:
            fill(split[0], split[1])
        finally:
            for f in futures:
                f.result()
        if row_fn is not None:  # rows that straddle two workers' ranges
            for w in range(1, workers):
                start = bounds[split[w]]
                if start % width:
                    r = start // width
                    row_fn(rows[r : r + 1], r, r + 1)
        return out


def _rebuild(n_streams: int, min_chunk: int, state: Tensor) -> StreamGenerator:
    g = StreamGenerator("cpu", n_streams, min_chunk)
    g.set_state(state)
    return g


# ------------------------------------------------------------------ helpers
def derived_seed(seed: int, purpose: str, rank: int = 0) -> int:
    """Independent 63-bit seeds per purpose and rank from one user seed.

    The LightningModules seed their moves with ``derived_seed(seed, "moves", rank)`` and
    their default starts with ``derived_seed(seed, "init")``; passing the former to
    :func:`lightning_ex2.sample` (with the module's starts as ``init``) reproduces a
    one-device module run's draws.
    """
    words = [seed % 2**32, seed // 2**32 % 2**32, sum(map(ord, purpose)), rank]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


def make_generator(device: str | torch.device = "cpu") -> torch.Generator:
    """The run's generator: a :class:`StreamGenerator` on the CPU, else ``torch.Generator``."""
    device = torch.device(device)
    if device.type == "cpu":
        return StreamGenerator()
    return torch.Generator(device=device)


def _draw(
    method: str,
    fallback: Callable[..., Tensor],
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: str | torch.device | None,
    dtype: torch.dtype | None,
) -> Tensor:
    if isinstance(generator, StreamGenerator):
        dev = torch.device("cpu") if device is None else torch.device(device)
        shape = tuple(int(s) for s in shape)
        if dev.type == "cpu" and generator.n_chunks(math.prod(shape)) > 1:
            return generator._fill(torch.empty(shape, device=dev, dtype=dtype), method)
    # one chunk (the main stream: exactly torch's draw) or another generator
    return fallback(shape, generator=generator, device=device, dtype=dtype)


def randn(
    shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``N(0, 1)`` draws of ``shape``; parallel streams when ``generator`` is a
    :class:`StreamGenerator` (on the CPU), else ``torch.randn``."""
    return _draw("normal_", torch.randn, shape, generator, device, dtype)


def rand(
    shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``U[0, 1)`` draws of ``shape``; parallel streams when ``generator`` is a
    :class:`StreamGenerator` (on the CPU), else ``torch.rand``."""
    return _draw("uniform_", torch.rand, shape, generator, device, dtype)


def randn_rows(
    shape: Sequence[int],
    row_fn: RowFn,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """:func:`randn` of ``shape [..., D]`` (the same numbers) with ``row_fn(rows, start,
    stop)`` applied to each run of complete rows of the ``[R, D]`` view as soon as they
    are drawn (on the CPU with a :class:`StreamGenerator`: chunk by chunk, in cache, in
    the drawing threads; else once, on all rows). ``row_fn`` may transform ``rows`` in
    place and write per-row results into arrays of its own (disjoint rows per call);
    returns the tensor drawn, as ``row_fn`` left it.

    Example:
        >>> g = StreamGenerator().manual_seed(0)
        >>> norms = torch.empty(300 * 200)
        >>> def shift(rows, a, b):
        ...     torch.linalg.vector_norm(rows, dim=-1, out=norms[a:b])
        ...     rows.add_(1.0)
        >>> x = randn_rows((300, 200, 3), shift, generator=g)
        >>> z = randn((300, 200, 3), generator=StreamGenerator().manual_seed(0))
        >>> torch.equal(x, z + 1.0), torch.equal(norms, z.norm(dim=-1).flatten())
        (True, True)
    """
    shape = tuple(int(s) for s in shape)
    dev = torch.device("cpu") if device is None else torch.device(device)
    if isinstance(generator, StreamGenerator) and dev.type == "cpu":
        return generator._fill(torch.empty(shape, device=dev, dtype=dtype), "normal_", row_fn)
    out = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if out.numel():
        rows = out.view(-1, shape[-1])
        row_fn(rows, 0, rows.shape[0])
    return out
