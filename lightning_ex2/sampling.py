"""The Python API: ``lightning_ex2.sample(target, kernel, ...) -> Run``.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Funnel(dim=10)
    >>> kernel = lx.kernels.Ex2MCMC(lx.proposals.GaussianProposal(10, scale=3.0),
    ...                             n_particles=50, step_size=0.1, n_local_steps=3)
    >>> run = lx.sample(target, kernel, n_chains=16, n_steps=200, burn_in=50, seed=0,
    ...                 progress=False)
    >>> run.samples.shape  # (chain, draw, dim), ArviZ order
    torch.Size([16, 200, 10])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lightning_ex2 import interrupt
from lightning_ex2.kernels.base import ChainState, Kernel
from lightning_ex2.random import make_generator
from lightning_ex2.targets.base import check_target, target_dim
from lightning_ex2.validation import check_int


@dataclass
class Run:
    """Result of :func:`sample`.

    Attributes:
        samples: draws after burn-in, ``[C, n_steps // thin, D]`` on the chains' device.
        log_prob: ``log pi`` of the draws, ``[C, n_steps // thin]``.
        info: per-chain ``[C]`` means over the post-burn-in steps of every field of
            the kernel's info (``accept_local``, ``accept_global``, ``particle_ess``),
            plus the final ``step_size`` (``[C]``) for kernels that have one.
        state: the final :class:`ChainState` (continue with ``kernel.step``).
        wall_seconds: wall time of burn-in + sampling.
    """

    samples: Tensor
    log_prob: Tensor
    info: dict[str, Tensor]
    state: ChainState
    wall_seconds: float
    n_steps: int
    burn_in: int
    thin: int
    meta: dict = field(default_factory=dict)

    def numpy(self) -> np.ndarray:
        """Draws as a float64 NumPy array ``(chain, draw, dim)``."""
        return self.samples.detach().cpu().double().numpy()

    def ess(self) -> np.ndarray:
        """Multi-chain ESS per coordinate ``(dim,)``."""
        from lightning_ex2.metrics import ess

        return ess(self.numpy())

    def rhat(self) -> np.ndarray:
        """Split R-hat per coordinate ``(dim,)``."""
        from lightning_ex2.metrics import rhat

        return rhat(self.numpy())


def _device_dtype(target: nn.Module, init: Tensor | None) -> tuple[torch.device, torch.dtype]:
    if init is not None:
        return init.device, init.dtype
    for t in (*target.parameters(), *target.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def run_chains(
    kernel: Kernel,
    target: nn.Module,
    state: ChainState,
    generator: torch.Generator | None,
    *,
    n_steps: int,
    burn_in: int = 0,
    thin: int = 1,
    adapt: bool = True,
    progress: bool = True,
    desc: str | None = None,
) -> tuple[ChainState, Tensor, Tensor, dict[str, Tensor]]:
    """The step loop shared by :func:`sample` and ``lightning-ex2 sample``.

    ``burn_in`` steps (adapting the step size when ``adapt``; draws discarded), then
    ``kernel.freeze``, then ``n_steps`` steps keeping every ``thin``-th draw in a
    preallocated buffer on the chains' device; nothing is copied to the host.

    Returns the final state, draws ``[C, n_steps // thin, D]``, their ``log pi``
    ``[C, n_steps // thin]`` and the per-chain ``[C]`` means of the kernel's info
    over the ``n_steps`` steps.
    """
    n_chains, dim = state.x.shape
    n_draws = n_steps // thin
    draws = state.x.new_empty((n_draws, n_chains, dim))
    draws_log_prob = state.x.new_empty((n_draws, n_chains))
    sums: dict[str, Tensor] = {}
    with tqdm(total=burn_in + n_steps, disable=not progress, dynamic_ncols=True,
              desc=desc or type(kernel).__name__) as bar:  # fmt: skip
        for _ in range(burn_in):
            state, _info = kernel.step(state, target, generator, adapt=adapt)
            bar.update()
        state = kernel.freeze(state)
        for t in range(n_steps):
            state, info = kernel.step(state, target, generator)
            for name, value in info._asdict().items():
                sums[name] = sums[name] + value if name in sums else value.clone()
            if (t + 1) % thin == 0:
                draws[t // thin] = state.x
                draws_log_prob[t // thin] = state.log_prob
            bar.update()
    means = {name: total / n_steps for name, total in sums.items()}
    return state, draws.transpose(0, 1), draws_log_prob.transpose(0, 1), means


def sample(
    target: nn.Module,
    kernel: Kernel,
    *,
    n_chains: int,
    n_steps: int,
    burn_in: int = 0,
    thin: int = 1,
    init: Tensor | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> Run:
    """Run ``n_chains`` chains of ``kernel`` on ``target``.

    The run is ``burn_in`` warm-up steps (step-size adaptation on, draws
    discarded), then ``kernel.freeze``, then ``n_steps`` steps with the kernel
    fixed, keeping every ``thin``-th draw in a preallocated buffer on the chains'
    device. Nothing in the step loop copies to the host.

    Args:
        target: module with ``log_prob(x [..., D]) -> [...]`` and ``dim``.
        kernel: a :class:`~lightning_ex2.kernels.Kernel`; moved to the chains' device/dtype.
        n_chains: number of chains ``C``.
        n_steps: post-burn-in steps.
        burn_in: warm-up steps before them.
        thin: keep one draw in ``thin``.
        init: start points ``[C, D]``; default: the kernel's proposal (global
            kernels) or ``N(0, I)``. Their device and dtype are the run's.
        seed: seed of the run's ``torch.Generator``; same seed, same draws.
        progress: show a progress bar.
    """
    check_target(target)
    n_chains = check_int(n_chains, "n_chains", "sample", 1)
    n_steps = check_int(n_steps, "n_steps", "sample", 1)
    burn_in = check_int(burn_in, "burn_in", "sample", 0)
    thin = check_int(thin, "thin", "sample", 1)
    if not isinstance(kernel, Kernel):
        raise TypeError(f"`kernel` must be a lightning_ex2 Kernel, got {type(kernel).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ValueError(f"`seed` must be an integer or None, got {seed!r}")
    device, dtype = _device_dtype(target, init)
    if init is None:
        dim = target_dim(target)
    else:
        init = torch.as_tensor(init)
        dim = int(init.shape[-1])
        if init.ndim != 2 or init.shape[0] != n_chains:
            raise ValueError(
                f"`init` must have shape [n_chains={n_chains}, dim], got {tuple(init.shape)}"
            )
        if hasattr(target, "dim") and int(target.dim) != dim:
            raise ValueError(f"`init` has dim {dim} but the target has dim {target.dim}")
    kernel.to(device=device, dtype=dtype)
    generator = make_generator(device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    if init is None:
        init = kernel.initial_points(n_chains, dim, generator, device, dtype)

    start = time.perf_counter()
    state = kernel.init(init.to(device=device, dtype=dtype), target)
    state, samples, log_prob, summary = run_chains(
        kernel, target, state, generator, n_steps=n_steps, burn_in=burn_in, thin=thin,
        adapt=True, progress=progress,
    )  # fmt: skip
    wall = time.perf_counter() - start

    if state.step_size is not None:
        summary["step_size"] = state.step_size.expand(n_chains).clone()
    return Run(
        samples=samples,
        log_prob=log_prob,
        info=summary,
        state=state,
        wall_seconds=wall,
        n_steps=n_steps,
        burn_in=burn_in,
        thin=thin,
        meta={"kernel": type(kernel).__name__, "seed": seed},
    )
