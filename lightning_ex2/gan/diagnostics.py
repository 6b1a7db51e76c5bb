"""Compatibility alias of :mod:`lightning_ex2.targets.gan_diagnostics`.

``python -m lightning_ex2.gan.diagnostics --config ...`` still runs its command.
"""

import sys

from lightning_ex2.targets.gan_diagnostics import (
    PAPER_REGIME,
    importance_ess_fraction,
    in_paper_regime,
    isir_acceptance,
    main,
    target_diagnostics,
)

__all__ = [
    "PAPER_REGIME",
    "importance_ess_fraction",
    "in_paper_regime",
    "isir_acceptance",
    "main",
    "target_diagnostics",
]

if __name__ == "__main__":
    sys.exit(main())
