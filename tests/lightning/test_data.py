"""The one cross-rank merge (``sharding.gather_rows``/``merge_owned_rows``), here with two
ranks played by two threads that swap tensors (the DDP tests run it under gloo)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch

from lightning_ex2.lightning.data import chain_shards, gather_rows, merge_owned_rows


class _Rank:
    """A module of one of two ranks: ``all_gather`` stacks both ranks' tensors."""

    def __init__(self, rank: int, slots: list[Any], barrier: threading.Barrier) -> None:
        self.rank, self.slots, self.barrier = rank, slots, barrier
        self.trainer = SimpleNamespace(world_size=len(slots))

    def all_gather(self, t: torch.Tensor) -> torch.Tensor:
        self.barrier.wait()
        self.slots[self.rank] = t
        self.barrier.wait()
        return torch.stack(list(self.slots))


def _on_two_ranks(fn: Callable[[_Rank], Any]) -> list[Any]:
    slots: list[Any] = [None, None]
    barrier = threading.Barrier(2)
    out: list[Any] = [None, None]

    def run(rank: int) -> None:
        out[rank] = fn(_Rank(rank, slots, barrier))

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_gather_rows_concatenates_uneven_rows_in_rank_order() -> None:
    local = [torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[4.0]])]
    out = _on_two_ranks(lambda m: gather_rows(m, local[m.rank]))
    for got in out:
        assert got.tolist() == [[1.0], [2.0], [3.0], [4.0]]
    flags = _on_two_ranks(lambda m: gather_rows(m, torch.tensor([m.rank == 0, True])))
    assert flags[1].dtype == torch.bool and flags[1].tolist() == [True, True, False, True]


def test_merge_owned_rows_takes_each_row_from_its_owner() -> None:
    shards = chain_shards(5, 2)  # rank 0 owns chains 0-2, rank 1 chains 3-4

    def merge(m: _Rank) -> torch.Tensor:
        local = torch.full((5, 2), float(m.rank))  # each rank's stale copy of all chains
        return merge_owned_rows(m, local, shards[m.rank])

    for got in _on_two_ranks(merge):
        assert got[:, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]

    def merge_dim1(m: _Rank) -> torch.Tensor:  # chains along dim 1 (a trace [T, C])
        local = torch.full((3, 4), -1.0)
        local[:, 2 * m.rank : 2 * m.rank + 2] = m.rank
        return merge_owned_rows(m, local, torch.arange(2 * m.rank, 2 * m.rank + 2), dim=1)

    for got in _on_two_ranks(merge_dim1):
        assert got.tolist() == [[0.0, 0.0, 1.0, 1.0]] * 3


def test_one_process_returns_its_input() -> None:
    one = SimpleNamespace(trainer=SimpleNamespace(world_size=1))
    x = torch.arange(4)
    assert gather_rows(one, x) is x and merge_owned_rows(one, x, torch.tensor([0])) is x
