"""The population of chains as a Lightning "dataset".

Each item is a block of chains: their indices and, optionally, their initial
points. An epoch is one sweep over all chains (one MCMC move per chain).
With ``K`` devices the chains are split into ``K`` contiguous shards (uneven
splits allowed, no chain repeated) by :class:`ChainShardSampler`, a
``DistributedSampler``, so Lightning uses it as is; every rank has the same
number of blocks per sweep, so collective operations (the flow's gradient
all-reduce) stay in step. The same split (:func:`chain_shards`) and the one cross-rank
merge of chain rows (:func:`gather_rows`, :func:`merge_owned_rows`) serve the sampler
module, its checkpoints and the callbacks; :class:`ChainDDPStrategy` is DDP for a chain
population.

Example:
    >>> dm = ChainDataModule(n_chains=8, init_loc=[-10.0, -10.0], init_scale=0.1)
    >>> dm.setup("fit")
    >>> batch = next(iter(dm.train_dataloader()))
    >>> batch["index"].shape, batch["init"].shape
    (torch.Size([8]), torch.Size([8, 2]))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import DDPStrategy
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_ex2.trust import load_torch
from lightning_ex2.validation import check_int


class ChainDataset(Dataset):
    """Blocks of chains: item ``b`` is ``{"index": [B_b], "init": [B_b, D]?}``.

    Blocks are laid out rank after rank: rank ``r`` owns items
    ``r * blocks_per_rank ... (r + 1) * blocks_per_rank - 1``.
    """

    def __init__(
        self,
        n_chains: int,
        init: torch.Tensor | None = None,
        world_size: int = 1,
        chains_per_batch: int | None = None,
    ) -> None:
        self.n_chains = n_chains
        self.init = init
        shards = chain_shards(n_chains, world_size)
        largest = max(len(s) for s in shards)
        per_batch = min(chains_per_batch or largest, largest)
        self.blocks_per_rank = -(-largest // per_batch)
        if min(len(s) for s in shards) < self.blocks_per_rank:
            raise ValueError(
                f"data.chains_per_batch ({chains_per_batch}) is too small for "
                f"{n_chains} chains on {world_size} devices: some device would get an "
                "empty block; use a larger chains_per_batch"
            )
        self.blocks = [b for s in shards for b in s.tensor_split(self.blocks_per_rank)]

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        index = self.blocks[b]
        item = {"index": index}
        if self.init is not None:
            item["init"] = self.init[index]
        return item


class ChainShardSampler(DistributedSampler):
    """Yields this rank's blocks in order; no shuffling, no padding, no repeats."""

    def __init__(self, dataset: ChainDataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.blocks_per_rank = dataset.blocks_per_rank

    def __iter__(self) -> Iterator[int]:
        start = self.rank * self.blocks_per_rank
        return iter(range(start, start + self.blocks_per_rank))

    def __len__(self) -> int:
        return self.blocks_per_rank


class ChainDataModule(pl.LightningDataModule):
    """Chains to run: how many, in which blocks, from where.

    Args:
        n_chains: total number of chains ``C`` (over all devices).
        chains_per_batch: chains moved per training step; default all of them
            (per device), so one step = one sweep = one epoch.
        init_path: ``.npy`` or ``.pt`` file of initial points ``[C, D]``.
        init_loc, init_scale: start the chains at ``N(init_loc, init_scale^2 I)``
            (``init_loc`` a list of length ``D``), e.g. all in one mode.
        seed: seed of those initial draws.

    Without ``init_path``/``init_loc`` the module starts the chains from its
    kernel's default (the proposal for global kernels, ``N(0, I)`` otherwise).
    """

    def __init__(
        self,
        n_chains: int = 100,
        chains_per_batch: int | None = None,
        init_path: str | None = None,
        init_loc: Sequence[float] | None = None,
        init_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        n_chains = check_int(n_chains, "data.n_chains", "ChainDataModule", 1)
        if chains_per_batch is not None and (
            not isinstance(chains_per_batch, int) or chains_per_batch < 1
        ):
            raise ValueError(
                f"data.chains_per_batch must be a positive integer, got {chains_per_batch!r}"
            )
        if init_path is not None and init_loc is not None:
            raise ValueError("give at most one of data.init_path and data.init_loc")
        if not init_scale > 0:
            raise ValueError(f"data.init_scale must be positive, got {init_scale!r}")
        self.n_chains = n_chains
        self.chains_per_batch = chains_per_batch
        self.init_path = init_path
        self.init_loc = None if init_loc is None else [float(v) for v in init_loc]
        self.init_scale = float(init_scale)
        self.seed = seed
        self._init: torch.Tensor | None = None
        self._init_loaded = False

    def initial_points(self) -> torch.Tensor | None:
        """``[C, D]`` initial points, or ``None`` for the module's default."""
        if self.init_path is not None:
            path = Path(self.init_path)
            if not path.is_file():
                raise FileNotFoundError(f"data.init_path: no such file: {path}")
            if path.suffix == ".npy":
                init = torch.from_numpy(np.load(path))
            elif path.suffix in {".pt", ".pth"}:
                init = load_torch(path, what=f"data.init_path {path}")
            else:
                raise ValueError(f"data.init_path must be a .npy or .pt file, got {path.name}")
            if init.ndim != 2 or init.shape[0] != self.n_chains:
                raise ValueError(
                    f"data.init_path holds shape {tuple(init.shape)}, expected "
                    f"[n_chains={self.n_chains}, dim]"
                )
            return init.to(torch.get_default_dtype())
        if self.init_loc is not None:
            g = torch.Generator().manual_seed(self.seed)
            loc = torch.tensor(self.init_loc)
            return loc + self.init_scale * torch.randn(self.n_chains, len(loc), generator=g)
        return None

    def check_dim(self, dim: int) -> None:
        """Raise ``ValueError`` naming the field when the initial points are not ``dim``-D."""
        if self.init_loc is not None and len(self.init_loc) != dim:
            raise ValueError(
                f"data.init_loc has {len(self.init_loc)} entries but the target has dim {dim}; "
                f"give {dim} numbers"
            )
        if self.init_path is not None:
            self.setup("fit")
            assert self._init is not None
            if self._init.shape[-1] != dim:
                raise ValueError(
                    f"data.init_path holds points of dim {self._init.shape[-1]} but the "
                    f"target has dim {dim}"
                )

    def setup(self, stage: str) -> None:
        if not self._init_loaded:
            self._init = self.initial_points()
            self._init_loaded = True

    def _loader(self) -> DataLoader:
        self.setup("fit")
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        dataset = ChainDataset(self.n_chains, self._init, world, self.chains_per_batch)
        sampler = ChainShardSampler(dataset, num_replicas=world, rank=rank)
        return DataLoader(dataset, batch_size=None, sampler=sampler)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()


def chain_shards(n_chains: int, world_size: int) -> list[torch.Tensor]:
    """Contiguous shards of ``range(n_chains)``, one per rank, sizes differing by <= 1.

    Example:
        >>> [s.tolist() for s in chain_shards(5, 2)]
        [[0, 1, 2], [3, 4]]
    """
    if n_chains < world_size:
        raise ValueError(
            f"data.n_chains ({n_chains}) must be at least the number of devices ({world_size})"
        )
    return list(torch.arange(n_chains).tensor_split(world_size))


def gather_rows(module: Any, local: Tensor) -> Tensor:
    """Every rank's rows of ``local`` ``[B_r, ...]`` concatenated in rank order,
    ``[sum_r B_r, ...]`` (``B_r`` may differ between ranks; the dtype is kept, bool too).

    Example (one process):
        >>> class One:
        ...     class trainer:
        ...         world_size = 1
        >>> gather_rows(One(), torch.arange(3)).tolist()
        [0, 1, 2]
    """
    if module.trainer.world_size == 1:
        return local
    wire = local.to(torch.uint8) if local.dtype == torch.bool else local
    sizes = module.all_gather(torch.tensor([local.shape[0]], device=local.device)).reshape(-1)
    padded = wire.new_zeros((int(sizes.max()), *local.shape[1:]))
    padded[: local.shape[0]] = wire
    everything = module.all_gather(padded)  # [world, max B_r, ...]
    rows = torch.cat([everything[r, : int(n)] for r, n in enumerate(sizes.tolist())])
    return rows.to(local.dtype)


def merge_owned_rows(module: Any, local: Tensor, owned: Tensor, dim: int = 0) -> Tensor:
    """``local`` with each row (along ``dim``) that a rank owns taken from that rank.

    ``owned`` ``[k]``: the indices along ``dim`` of the rows this rank holds the truth of
    (ranks own disjoint rows; where two claim one, the higher rank's wins); rows no rank
    owns keep this rank's values. Every rank gets the same merged tensor.
    """
    if module.trainer.world_size == 1:
        return local
    owned = owned.to(device=local.device, dtype=torch.long).reshape(-1)
    rows = gather_rows(module, owned)
    values = gather_rows(module, local.index_select(dim, owned).movedim(dim, 0))
    return local.index_copy(dim, rows, values.movedim(0, dim))


class ChainDDPStrategy(DDPStrategy):
    """``DDPStrategy`` that leaves a module without trainable parameters unwrapped.

    ``torch``'s ``DistributedDataParallel`` refuses a module with no trainable parameter,
    which is exactly an :class:`~lightning_ex2.lightning.MCMCSampler` with a local kernel
    or a fixed proposal: its chains are sharded by the DataModule and its collectives
    (sample gathering, step-size statistics, checkpoints) go through the strategy, so it
    needs the process group but no gradient sync. ``Ex2Trainer`` uses it for
    ``strategy="ddp"``.
    """

    strategy_name = "ddp_chains"

    def configure_ddp(self) -> None:
        if any(p.requires_grad for p in self.model.parameters()):
            super().configure_ddp()
