"""Moved to :mod:`lightning_ex2.figures` (kept for imports of the sample writer)."""

from lightning_ex2.figures import (
    figure_to_array,
    pair_figure,
    rank_figure,
    save_figure,
    scatter_figure,
    trace_figure,
)

__all__ = [
    "figure_to_array",
    "pair_figure",
    "rank_figure",
    "save_figure",
    "scatter_figure",
    "trace_figure",
]
