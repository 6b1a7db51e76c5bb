"""Argument checks whose errors name the argument (a leaf module)."""

from __future__ import annotations

import math
import operator
from typing import Any


def check_int(value: Any, name: str, cls: str, minimum: int) -> int:
    """``value`` as an ``int >= minimum``; ValueError naming ``name`` otherwise."""
    try:
        out = operator.index(value)
    except TypeError:
        out = None
    if out is None or isinstance(value, bool) or out < minimum:
        raise ValueError(f"{cls}: `{name}` must be an int >= {minimum}, got {value!r}")
    return out


def _float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def check_positive(value: Any, name: str, cls: str) -> float:
    """``value`` as a finite ``float > 0``; ValueError naming ``name`` otherwise."""
    out = _float_or_nan(value)
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{cls}: `{name}` must be a finite positive number, got {value!r}")
    return out


def check_finite(value: Any, name: str, cls: str) -> float:
    """``value`` as a finite ``float``; ValueError naming ``name`` otherwise."""
    out = _float_or_nan(value)
    if not math.isfinite(out):
        raise ValueError(f"{cls}: `{name}` must be a finite number, got {value!r}")
    return out
