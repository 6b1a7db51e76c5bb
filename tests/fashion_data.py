"""Synthetic Fashion-MNIST IDX files for the tests (the Debian package is never needed: CI is offline)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """``<prefix>-images-idx3-ubyte.gz`` and ``<prefix>-labels-idx1-ubyte.gz`` (big-endian header)."""
    n, rows, cols = images.shape
    head = b"".join(int(v).to_bytes(4, "big") for v in (2051, n, rows, cols))
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(head + images.astype(np.uint8).tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(
            b"".join(int(v).to_bytes(4, "big") for v in (2049, n))
            + labels.astype(np.uint8).tobytes()
        )


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: bright top half (0) / bright bottom half (1), plus noise (flip-invariant)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, y in enumerate(labels):
        images[i, :14, :] += 180 * (y == 0)
        images[i, 14:, :] += 180 * (y == 1)
    return images.astype(np.uint8), labels.astype(np.uint8)
