"""posteriordb posteriors as torch targets on Stan's unconstrained space.

Example (with a local clone of https://github.com/stan-dev/posteriordb):
    >>> import lightning_ex2 as lx  # doctest: +SKIP
    >>> target = lx.targets.posteriordb.load("garch-garch11", "path/to/posteriordb")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import (
    Bounded,
    Lower,
    Ordered,
    Param,
    PositiveOrdered,
    PosteriorDBTarget,
    Real,
    Simplex,
    Transform,
    Upper,
)
from .database import load_data, posterior_info, reference_draws, stan_code

#: posterior name -> port class (filled by the ports' modules)
POSTERIORS: dict[str, type[PosteriorDBTarget]] = {}


def _import_ports() -> None:
    """Import every port module of this package (each registers its classes)."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if module.name not in {"base", "database"} and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def register(cls: type[PosteriorDBTarget]) -> type[PosteriorDBTarget]:
    """Class decorator: make a port known to :func:`load` under ``cls.name``."""
    POSTERIORS[cls.name] = cls
    return cls


def ports() -> dict[str, type[PosteriorDBTarget]]:
    """Every port: posterior name -> class."""
    _import_ports()
    return dict(sorted(POSTERIORS.items()))


def load(
    name: str, posteriordb: str | Path, dtype: torch.dtype = torch.float64
) -> PosteriorDBTarget:
    """The port of posterior ``name`` with its data read from a posteriordb clone."""
    _import_ports()
    if name not in POSTERIORS:
        raise KeyError(f"posterior {name!r} has no port; known: {', '.join(sorted(POSTERIORS))}")
    return POSTERIORS[name](load_data(name, posteriordb), dtype=dtype)


def reference_array(target: PosteriorDBTarget, posteriordb: str | Path) -> np.ndarray:
    """posteriordb's reference draws of ``target`` as one array ``(chain, draw, M)`` in
    ``target.flat_names()`` order (constrained values; ``target.unconstrain`` maps them
    to Stan's unconstrained space)."""
    draws = reference_draws(target.name, posteriordb)
    names = target.flat_names()
    missing = sorted(set(names) - set(draws))
    if missing:
        raise KeyError(f"{target.name}: reference draws lack {', '.join(missing)}")
    return np.stack([draws[n] for n in names], axis=-1)


__all__ = [
    "POSTERIORS",
    "Bounded",
    "Lower",
    "Ordered",
    "Param",
    "PositiveOrdered",
    "PosteriorDBTarget",
    "Real",
    "Simplex",
    "Transform",
    "Upper",
    "load",
    "load_data",
    "ports",
    "posterior_info",
    "reference_array",
    "reference_draws",
    "register",
    "stan_code",
]
