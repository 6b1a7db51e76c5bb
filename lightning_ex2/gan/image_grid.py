"""Image grids in plain torch (no torchvision), for TensorBoard and figures.

Example:
    >>> import torch
    >>> image_grid(torch.zeros(10, 3, 8, 8), nrow=4).shape
    torch.Size([3, 32, 42])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["image_grid"]


def image_grid(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """Tile ``images [N, C, H, W]`` in ``[-1, 1]`` into one ``[C, H', W']`` image in ``[0, 1]``.

    ``nrow`` images per row, ``padding`` pixels of ``pad_value`` between and around them;
    missing cells of the last row are ``pad_value``. One-channel images stay one-channel.
    """
    if images.ndim != 4:
        raise ValueError(f"image_grid: expected images [N, C, H, W], got {tuple(images.shape)}")
    n, c, h, w = images.shape
    ncol = max(1, min(nrow, n))
    nrows = max(1, -(-n // ncol))
    x = ((images.detach().float() + 1) / 2).clamp(0, 1)
    grid = torch.full(
        (c, nrows * (h + padding) + padding, ncol * (w + padding) + padding),
        pad_value,
        device=images.device,
    )
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid
