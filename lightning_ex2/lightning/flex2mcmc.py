"""``FlEx2MCMC``: Ex2MCMC whose i-SIR proposal is a normalizing flow trained while sampling.

Samsonov et al. 2022, Alg. 3. Each training step moves the chains with the
current flow (one i-SIR step + ``n_local_steps`` MALA steps), then takes one
optimizer step on the flow from the same particles:

    loss = forward_kl_weight * L_fwd + backward_kl_weight * L_bwd
    L_fwd = -mean_chains sum_j softmax(log w)_j log q(x_j)       (Rao-Blackwellized over
                                                                particles; KL(pi || q) + const)
    L_bwd = mean over fresh reparameterized x ~ q of log q(x) - log pi(x)    (KL(q || pi) + const)

After ``flow_train_epochs`` sweeps (default: all of ``fit``) the flow is
frozen, and ``sample`` always runs the frozen kernel, so the production chain
is a fixed pi-invariant Markov kernel.

Run it with::

    lightning-ex2 fit --config configs/quickstart.yaml
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lightning_ex2.lightning.compat import MoveCounter
from lightning_ex2.lightning.module import MCMCSampler
from lightning_ex2.proposals.training import (
    FlowTraining,
    check_flow_training,
    default_optimizer,
    flow_losses,
    flow_update,
)
from lightning_ex2.types import Particles


class FlEx2MCMC(MCMCSampler):
    """FlEx2MCMC (or flow-i-SIR with an ``ISIR`` kernel) with a trainable proposal.

    Args:
        target, kernel, n_chains, adapt_epochs, seed: see :class:`MCMCSampler`;
            ``kernel`` must be ``ISIR`` or ``Ex2MCMC`` whose ``proposal`` has
            trainable parameters (e.g. :class:`~lightning_ex2.proposals.FlowProposal`).
        forward_kl_weight: weight ``a`` of the forward-KL term (particles, weighted).
        backward_kl_weight: weight ``b`` of the backward-KL term (reparameterized).
        n_backward_samples: fresh flow samples per chain for the backward KL.
        flow_train_epochs: sweeps of ``fit`` during which the flow trains; ``None`` = all.
        gradient_clip_val: max gradient norm of the flow update (``None``: no clipping).
        warm_start: optional distribution (any module with
            ``sample(shape, generator=None)``) the flow is first fitted to by maximum
            likelihood for ``warm_start_steps`` steps, e.g. a wide Gaussian.
        warm_start_steps: steps of that warm start (0 = none).
        optimizer: optimizer factory for the flow's parameters (Adam, lr 1e-3).
        lr_scheduler: optional LR scheduler factory, stepped once per flow update.
    """

    needs_particles = True

    def __init__(
        self,
        target: nn.Module,
        kernel: nn.Module,
        n_chains: int = 100,
        adapt_epochs: int | None = None,
        seed: int = 0,
        forward_kl_weight: float = 1.0,
        backward_kl_weight: float = 0.0,
        n_backward_samples: int = 1,
        flow_train_epochs: int | None = None,
        gradient_clip_val: float | None = 1.0,
        warm_start: nn.Module | None = None,
        warm_start_steps: int = 0,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(target, kernel, n_chains, adapt_epochs, seed)
        if not kernel.is_global:
            raise ValueError(
                f"model.kernel must be ISIR or Ex2MCMC (a kernel with a proposal) for "
                f"FlEx2MCMC, got {type(kernel).__name__}; use MCMCSampler for local kernels"
            )
        proposal = kernel.proposal
        if not any(p.requires_grad for p in proposal.parameters()):
            raise ValueError(
                f"model.kernel.proposal ({type(proposal).__name__}) has no trainable "
                "parameters; use a FlowProposal, or MCMCSampler for a fixed proposal"
            )
        check_flow_training(forward_kl_weight, backward_kl_weight, n_backward_samples, "model.")
        if flow_train_epochs is not None and flow_train_epochs < 0:
            raise ValueError(f"model.flow_train_epochs must be >= 0, got {flow_train_epochs}")
        if warm_start_steps and warm_start is None:
            raise ValueError("model.warm_start_steps > 0 needs model.warm_start")
        self.forward_kl_weight = float(forward_kl_weight)
        self.backward_kl_weight = float(backward_kl_weight)
        self.n_backward_samples = int(n_backward_samples)
        self.flow_train_epochs = flow_train_epochs
        self.gradient_clip_val = gradient_clip_val
        self.warm_start = warm_start
        self.warm_start_steps = int(warm_start_steps)
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        if gradient_clip_val is not None and not gradient_clip_val > 0:
            raise ValueError(
                f"model.gradient_clip_val must be > 0 or null, got {gradient_clip_val}"
            )
        #: the loss settings, as :func:`lightning_ex2.sample` takes them (``train_proposal``)
        self.flow_training = FlowTraining(
            self.forward_kl_weight, self.backward_kl_weight, self.n_backward_samples,
            gradient_clip_val, optimizer, lr_scheduler,
        )  # fmt: skip
        self.register_buffer("warm_start_done", torch.tensor(warm_start_steps == 0))

    @property
    def algorithm(self) -> str:
        """``FlEx2MCMC`` (an ``Ex2MCMC`` kernel), ``flow-i-SIR`` (an ``ISIR`` kernel), else
        ``flow-<kernel>``: the kernel with the flow this module trains as its proposal."""
        from lightning_ex2.kernels import ISIR, Ex2MCMC

        if isinstance(self.kernel, Ex2MCMC):
            return "FlEx2MCMC"
        if isinstance(self.kernel, ISIR):
            return "flow-i-SIR"
        return f"flow-{type(self.kernel).__name__}"

    @property
    def proposal(self) -> nn.Module:
        return self.kernel.proposal

    def configure_optimizers(self) -> Any:
        """The flow's optimizer, and a :class:`MoveCounter` stepped on moves without a
        flow update (so a global step is a move either way)."""
        optimizer = self.optimizer_factory(self.proposal.parameters())
        if self.scheduler_factory is None:
            return [optimizer, MoveCounter()]
        return [optimizer, MoveCounter()], [self.scheduler_factory(optimizer)]

    def move_counter(self) -> Any:
        return self.optimizers()[1]

    def _training_flow(self) -> bool:
        return self.flow_train_epochs is None or self.current_epoch < self.flow_train_epochs

    def _clip(self, optimizer: Any, max_norm: float) -> None:
        self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")

    def _optimizer_step(self, loss: Tensor) -> None:
        optimizer = self.optimizers()[0]
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val is not None:
            self._clip(optimizer, self.gradient_clip_val)
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def on_train_start(self) -> None:
        super().on_train_start()
        if bool(self.warm_start_done):
            return
        with torch.no_grad():
            self.warm_start.to(self.device)
        for _ in range(self.warm_start_steps):
            with torch.no_grad():
                x = self.warm_start.sample((self.n_chains,), generator=self.generator)
            self._optimizer_step(-self.proposal.log_prob(x.to(self.state.x)).mean())
        self.warm_start_done.fill_(True)

    def flow_losses(self, particles: Particles, n_chains: int) -> dict[str, Tensor]:
        """Forward-KL (weighted particles) and backward-KL (reparameterized) losses
        (:func:`lightning_ex2.proposals.training.flow_losses`)."""
        return flow_losses(
            self.proposal, particles, self.target, self.generator, self.forward_kl_weight,
            self.backward_kl_weight, self.n_backward_samples,
        )  # fmt: skip

    def after_move(self, idx: Tensor, particles: Particles | None) -> dict[str, Tensor]:
        """One flow update on the move's particles: the core's
        :func:`~lightning_ex2.proposals.training.flow_update`, with Lightning's backward
        and gradient clipping."""
        if particles is None or not self._training_flow():
            return {}
        return flow_update(
            self.proposal, self.optimizers()[0], particles, self.target, self.generator,
            self.flow_training, scheduler=self.lr_schedulers(),
            backward=self.manual_backward, clip=self._clip,
        )  # fmt: skip
