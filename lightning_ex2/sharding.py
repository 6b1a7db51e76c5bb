"""How chains are split over devices: one contiguous shard per rank (a leaf module)."""

from __future__ import annotations

import torch


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
