"""DDP for chain populations: wrap in ``DistributedDataParallel`` only what trains.

``torch``'s ``DistributedDataParallel`` refuses a module with no trainable
parameter, which is exactly an :class:`~lightning_ex2.modules.MCMCSampler` with
a local kernel or a fixed proposal: its chains are sharded by the DataModule
and its collectives (sample gathering, step-size statistics, checkpoints) go
through the strategy, so it needs the process group but no gradient sync.
``Ex2Trainer`` uses this strategy for ``strategy="ddp"``.
"""

from __future__ import annotations

from pytorch_lightning.strategies import DDPStrategy


class ChainDDPStrategy(DDPStrategy):
    """``DDPStrategy`` that leaves a module without trainable parameters unwrapped."""

    strategy_name = "ddp_chains"

    def configure_ddp(self) -> None:
        if any(p.requires_grad for p in self.model.parameters()):
            super().configure_ddp()
