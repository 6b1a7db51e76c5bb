"""Figures of ``lightning_ex2.output.figures``: axes, subsampling, argument checks, atomic PNGs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lightning_ex2.output.figures import figure_to_array, save_figure, scatter_figure, trace_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- figures
@pytest.mark.parametrize("dim", [1, 2, 5])
def test_scatter_figure_axes(dim):
    rng = np.random.default_rng(0)
    samples = torch.as_tensor(rng.normal(size=(300, dim)), dtype=torch.float32)
    fig = scatter_figure(samples, reference=rng.normal(size=(500, dim)), dims=(0, dim - 1 or 1))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    img = figure_to_array(fig)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    # no reference, 1-D input
    assert len(scatter_figure(samples[:, 0] if dim == 1 else samples, title="t").axes) == 1


def test_scatter_figure_subsampling_is_deterministic():
    x = np.random.default_rng(1).normal(size=(20_000, 2))
    a = figure_to_array(scatter_figure(x, max_points=100, seed=3))
    b = figure_to_array(scatter_figure(x, max_points=100, seed=3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("dim", "dims"), [(1, (0,)), (2, (0, 1)), (5, (0, 2, 4))])
def test_trace_figure_axes(dim, dims):
    trace = torch.randn(3, 50, dim)  # (chain, draw, dim); fewer chains than the default 4
    fig = trace_figure(trace, dims=dims, title="trace")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == len(dims)
    assert len(fig.axes[0].lines) == 3


def test_figure_validation_names_argument():
    with pytest.raises(ValueError, match="dims"):
        scatter_figure(np.zeros((10, 3)), dims=(0, 3))
    with pytest.raises(ValueError, match="reference"):
        scatter_figure(np.zeros((10, 3)), reference=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="max_points"):
        scatter_figure(np.zeros((10, 3)), max_points=0)
    with pytest.raises(ValueError, match="samples"):
        scatter_figure(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="trace"):
        trace_figure(np.zeros((10, 3)).ravel())
    with pytest.raises(ValueError, match="dims"):
        trace_figure(np.zeros((2, 10, 3)), dims=(3,))
    with pytest.raises(ValueError, match="chains"):
        trace_figure(np.zeros((2, 10, 3)), chains=(5,))


def test_save_figure_atomic_png(tmp_path):
    fig = trace_figure(np.random.default_rng(0).normal(size=(2, 20, 1)))
    path = tmp_path / "sub" / "trace.png"
    save_figure(fig, path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    save_figure(fig, str(path))  # overwrite
    assert sorted(os.listdir(path.parent)) == ["trace.png"]  # no leftover .tmp
