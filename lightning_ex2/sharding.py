"""How chains are split over devices and merged back (a leaf module: torch only).

Each rank owns a contiguous shard of the chains (:func:`chain_shards`); what a rank holds
of them comes back together through the one cross-rank merge here: :func:`gather_rows`
(every rank's rows, concatenated in rank order) and :func:`merge_owned_rows` (a full
tensor whose rows are taken from the rank that owns them). Both are collectives: every
rank calls them, in the same order. ``module`` is anything with ``trainer.world_size`` and
``all_gather`` (a LightningModule); on one process they return their input, no copy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


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
