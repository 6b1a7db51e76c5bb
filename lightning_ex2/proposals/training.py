"""FlEx2MCMC's flow training: the loss on the particles the chains produce, one update.

Samsonov et al. 2022, Alg. 3. After each chain move with the current proposal ``q``
(one i-SIR step + the local steps), one optimizer step on ``q``'s parameters:

    loss = forward_kl_weight * L_fwd + backward_kl_weight * L_bwd
    L_fwd = -mean_chains sum_j softmax(log w)_j log q(x_j)      (Rao-Blackwellized over the
                                                               particles; KL(pi || q) + const)
    L_bwd = mean over fresh reparameterized x ~ q of log q(x) - log pi(x)  (KL(q || pi) + const)

The one implementation, shared by :func:`lightning_ex2.sample` (burn-in, then the flow
is frozen) and the ``FlEx2MCMC`` LightningModule (which passes Lightning's backward and
gradient clipping). Plain torch: no Lightning here.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.tensor([2.0, -2.0]), torch.eye(2))
    >>> flow = lx.proposals.FlowProposal(2, n_blocks=1, hidden_features=8, scale=3.0)
    >>> kernel = lx.kernels.Ex2MCMC(flow, n_particles=8, step_size=0.3)
    >>> trainer = FlowTrainer(kernel, FlowTraining(backward_kl_weight=0.1))
    >>> state = kernel.init(torch.zeros(4, 2), target)
    >>> g = torch.Generator().manual_seed(0)
    >>> state, info = trainer.step(state, target, g)  # one move + one flow update
    >>> sorted(trainer.last_losses)
    ['loss/backward_kl', 'loss/forward_kl']
    >>> trainer.freeze()  # the production chain is a fixed kernel
    >>> any(p.requires_grad for p in flow.parameters())
    False
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from lightning_ex2.types import ChainState, Particles

__all__ = [
    "FlowTrainer",
    "FlowTraining",
    "check_flow_training",
    "clip_grad_norm",
    "default_optimizer",
    "flow_loss",
    "flow_losses",
    "flow_update",
    "is_trainable",
    "proposal_trainer",
]


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The flow's default optimizer: Adam, learning rate ``1e-3``."""
    return torch.optim.Adam(params, lr=1e-3)


def is_trainable(proposal: nn.Module) -> bool:
    """Whether ``proposal`` has parameters with ``requires_grad`` (an untrained flow;
    :meth:`FlowTrainer.freeze` turns them off)."""
    return isinstance(proposal, nn.Module) and any(p.requires_grad for p in proposal.parameters())


def check_flow_training(
    forward_kl_weight: float,
    backward_kl_weight: float,
    n_backward_samples: int,
    prefix: str = "",
) -> None:
    """The checks of the loss settings; messages name ``<prefix><field>``."""
    if forward_kl_weight < 0 or backward_kl_weight < 0:
        raise ValueError(f"{prefix}forward_kl_weight and {prefix}backward_kl_weight must be >= 0")
    if forward_kl_weight == 0 and backward_kl_weight == 0:
        raise ValueError(
            f"one of {prefix}forward_kl_weight, {prefix}backward_kl_weight must be > 0"
        )
    if int(n_backward_samples) != n_backward_samples or n_backward_samples < 1:
        raise ValueError(f"{prefix}n_backward_samples must be >= 1, got {n_backward_samples}")


@dataclass(frozen=True)
class FlowTraining:
    """Settings of the flow training (the ``FlEx2MCMC`` module's defaults).

    Args:
        forward_kl_weight: weight ``a`` of the forward-KL term (the particles, weighted).
        backward_kl_weight: weight ``b`` of the backward-KL term (reparameterized draws).
        n_backward_samples: fresh flow draws per chain for the backward KL.
        gradient_clip_val: max gradient norm of an update (``None``: no clipping).
        optimizer: factory ``params -> torch.optim.Optimizer`` (Adam, lr ``1e-3``).
        lr_scheduler: optional factory ``optimizer -> scheduler``, stepped once per update.
    """

    forward_kl_weight: float = 1.0
    backward_kl_weight: float = 0.0
    n_backward_samples: int = 1
    gradient_clip_val: float | None = 1.0
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = default_optimizer
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None

    def __post_init__(self) -> None:
        check_flow_training(
            self.forward_kl_weight, self.backward_kl_weight, self.n_backward_samples,
            "train_proposal.",
        )  # fmt: skip
        if self.gradient_clip_val is not None and not self.gradient_clip_val > 0:
            raise ValueError(
                f"train_proposal.gradient_clip_val must be > 0 or None, "
                f"got {self.gradient_clip_val!r}"
            )


def flow_losses(
    proposal: nn.Module,
    particles: Particles,
    target: nn.Module,
    generator: torch.Generator | None,
    forward_kl_weight: float = 1.0,
    backward_kl_weight: float = 0.0,
    n_backward_samples: int = 1,
) -> dict[str, Tensor]:
    """The terms with a non-zero weight: ``loss/forward_kl``, ``loss/backward_kl``.

    ``particles`` is one i-SIR particle system (``x [C, N, D]``, ``log_weights [C, N]``);
    the backward term draws ``C * n_backward_samples`` fresh points from ``generator``.
    Non-finite terms (a particle of weight 0, a non-finite ``log pi``) are left out.
    """
    losses: dict[str, Tensor] = {}
    if forward_kl_weight > 0:
        weights = torch.softmax(particles.log_weights, dim=1).detach()  # [C, N]
        log_q = proposal.log_prob(particles.x.detach())  # [C, N], with graph
        log_q = torch.where(weights > 0, log_q, torch.zeros_like(log_q))
        losses["loss/forward_kl"] = -(weights * log_q).sum(1).mean()
    if backward_kl_weight > 0:
        n_chains = particles.log_weights.shape[0]
        x, log_q = proposal.sample_and_log_prob((n_chains, n_backward_samples), generator)
        log_pi = target.log_prob(x)
        ok = torch.isfinite(log_pi) & torch.isfinite(log_q)
        diff = torch.where(ok, log_q - log_pi, torch.zeros_like(log_pi))
        losses["loss/backward_kl"] = diff.sum() / ok.sum().clamp_min(1)
    return losses


def flow_loss(
    losses: dict[str, Tensor], forward_kl_weight: float, backward_kl_weight: float
) -> Tensor:
    """``a * loss/forward_kl + b * loss/backward_kl`` (absent terms count 0)."""
    loss = forward_kl_weight * losses.get("loss/forward_kl", 0.0)
    return loss + backward_kl_weight * losses.get("loss/backward_kl", 0.0)


def clip_grad_norm(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Clip the gradient norm of the optimizer's parameters (all groups, together)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, max_norm)


def flow_update(
    proposal: nn.Module,
    optimizer: Any,
    particles: Particles,
    target: nn.Module,
    generator: torch.Generator | None,
    settings: FlowTraining,
    *,
    scheduler: Any = None,
    backward: Callable[[Tensor], None] = Tensor.backward,
    clip: Callable[[Any, float], None] = clip_grad_norm,
) -> dict[str, Tensor]:
    """One optimizer step of ``proposal`` on the loss of ``particles``; returns the
    (detached) loss terms.

    ``backward`` and ``clip`` default to plain torch; the LightningModule passes its
    ``manual_backward`` and ``clip_gradients`` (precision plugins, strategies).
    """
    with torch.enable_grad():
        losses = flow_losses(
            proposal, particles, target, generator, settings.forward_kl_weight,
            settings.backward_kl_weight, settings.n_backward_samples,
        )  # fmt: skip
        loss = flow_loss(losses, settings.forward_kl_weight, settings.backward_kl_weight)
        optimizer.zero_grad()
        backward(loss)
    if settings.gradient_clip_val is not None:
        clip(optimizer, settings.gradient_clip_val)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {k: v.detach() for k, v in losses.items()}


class FlowTrainer:
    """FlEx2MCMC's training phase for a global kernel with a trainable proposal.

    :meth:`step` is a kernel step (same signature and draws as ``kernel.step``) that
    also takes one :func:`flow_update` on the step's particles; :meth:`freeze` ends
    training (parameters ``requires_grad`` off, ``eval()``), after which the kernel is
    a fixed pi-invariant Markov kernel. Used by :func:`lightning_ex2.sample` in burn-in.

    Args:
        kernel: a global kernel (``ISIR``, ``Ex2MCMC``) whose ``proposal`` is trainable.
        settings: loss weights, clipping, optimizer (:class:`FlowTraining`).
        n_updates: freeze after that many steps (``None``: only :meth:`freeze` does).
    """

    def __init__(
        self, kernel: Any, settings: FlowTraining | None = None, n_updates: int | None = None
    ) -> None:
        if not getattr(kernel, "is_global", False) or not is_trainable(kernel.proposal):
            raise ValueError(
                f"training a proposal needs a global kernel (ISIR, Ex2MCMC) whose proposal "
                f"has trainable parameters, got {type(kernel).__name__}"
            )
        self.kernel = kernel
        self.proposal: nn.Module = kernel.proposal
        self.settings = settings or FlowTraining()
        self.optimizer = self.settings.optimizer(
            [p for p in self.proposal.parameters() if p.requires_grad]
        )
        factory = self.settings.lr_scheduler
        self.scheduler = None if factory is None else factory(self.optimizer)
        self.max_updates = n_updates
        self.n_updates = 0
        self.last_losses: dict[str, Tensor] = {}
        self.proposal.train()

    def step(
        self,
        state: ChainState,
        target: nn.Module,
        generator: torch.Generator | None = None,
        params: Any = None,
    ) -> tuple[ChainState, NamedTuple]:
        """One chain move with the current proposal, then one flow update (the last
        of ``n_updates`` freezes the proposal)."""
        state, info, particles = self.kernel.step_with_particles(state, target, generator, params)
        self.last_losses = flow_update(
            self.proposal, self.optimizer, particles, target, generator, self.settings,
            scheduler=self.scheduler,
        )  # fmt: skip
        self.n_updates += 1
        if self.max_updates is not None and self.n_updates >= self.max_updates:
            self.freeze()
        return state, info

    def freeze(self) -> None:
        """End of training: the proposal's parameters no longer require grad; ``eval()``."""
        self.proposal.requires_grad_(False)
        self.proposal.eval()


def proposal_trainer(
    kernel: Any, train_proposal: bool | FlowTraining | None, burn_in: int
) -> FlowTrainer | None:
    """What :func:`lightning_ex2.sample` does with ``train_proposal`` (see there): the
    :class:`FlowTrainer` of its burn-in, or ``None``; warns where an untrained proposal
    will be used as it is."""
    if train_proposal is not None and not isinstance(train_proposal, bool | FlowTraining):
        raise TypeError(
            f"`train_proposal` must be None, a bool or a FlowTraining, "
            f"got {type(train_proposal).__name__}"
        )
    proposal = getattr(kernel, "proposal", None) if getattr(kernel, "is_global", False) else None
    trainable = proposal is not None and is_trainable(proposal)
    name = type(proposal).__name__
    if train_proposal is None or train_proposal is False:
        if not trainable:
            return None
        if train_proposal is False:
            _warn(
                f"sample: train_proposal=False: kernel.proposal ({name}) has trainable "
                "parameters (an untrained flow?) and is used as it is; freeze a trained one "
                "with proposal.requires_grad_(False) to silence this"
            )
            return None
        if burn_in == 0:
            _warn(
                f"sample: kernel.proposal ({name}) has trainable parameters (an untrained "
                "flow?) and burn_in=0 leaves no step to train it: it is used as it is; pass "
                "burn_in > 0 to train it (FlEx2MCMC), or freeze a trained one with "
                "proposal.requires_grad_(False)"
            )
            return None
        return FlowTrainer(kernel, None, n_updates=burn_in)
    if not trainable:
        raise ValueError(
            f"sample: `train_proposal` needs a global kernel (ISIR, Ex2MCMC) whose proposal "
            f"has trainable parameters (a FlowProposal), got {type(kernel).__name__}"
            + ("" if proposal is None else f" with a {name} (frozen or without parameters)")
        )
    if burn_in == 0:
        raise ValueError("sample: `train_proposal` needs `burn_in` > 0 (the proposal trains then)")
    settings = train_proposal if isinstance(train_proposal, FlowTraining) else None
    return FlowTrainer(kernel, settings, n_updates=burn_in)


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, UserWarning, stacklevel=4)  # the user's lx.sample line
