"""Tempering a GAN latent target: how sharp pi_beta is, and whether its mass holds better images.

For pi_beta(z) ∝ N(z; 0, I) exp(beta l(z)) (``l`` the config's discriminator logit,
``GANLatentTarget(beta=...)``) and each beta of a grid, over several seeds: from ``--n``
prior draws, the tilt std, the importance ESS / n of the prior as a proposal, the
importance-weighted mean logit under pi_beta, and the FID/IS of ``--k`` of the draws resampled
without replacement with probabilities ∝ exp(beta l) (Gumbel top-k; a crude stand-in for
exact samples of pi_beta), with the config's own FID/IS scorer. ``platt`` in ``--betas`` is
the Platt scale of a held-out logistic fit of the config's discriminator as it is (no
retraining; ``lightning_ex2.gan.platt.held_out_platt``, test images). Rewrites the
``beta-grid`` block of ``--page`` (docs/gans.md) with the table and the standard footer::

    python scripts/beta_grid.py --config configs/gan/fashion_mala.yaml

``--data_dir``/``--n_real`` point the real images elsewhere (the CI test's synthetic files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_ex2.stamp import Stamp, mean_spread, write_pages

ROOT = Path(__file__).resolve().parents[1]


def render(rows: list[dict[str, Any]], betas: dict[str, float]) -> str:
    """Markdown table: one line per beta, mean ± sd over the seeds."""
    lines = [
        "| beta | tilt std | importance ESS / n | mean logit under pi_beta (importance-weighted) "
        "| mean logit of the resampled | FID ↓ | IS ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, beta in betas.items():
        got = [r for r in rows if r["label"] == label]
        name = label if label == f"{beta:g}" else f"{label} = {beta:.4g}"

        def col(key: str, fmt: str, got: list[dict[str, Any]] = got) -> str:
            return mean_spread([r.get(key) for r in got], fmt)

        lines.append(
            f"| {name} | {col('tilt_std', '.2f')} | {col('importance_ess_fraction', '.2g')} | "
            f"{col('logit_mean_pi', '.2f')} | {col('logit_mean_resampled', '.2f')} | "
            f"{col('fid', '.1f')} | {col('is', '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    stamp = Stamp(
        ["python", "scripts/beta_grid.py", *(argv if argv is not None else sys.argv[1:])],
        threads=1,
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/gan/fashion_mala.yaml")
    parser.add_argument("--betas", nargs="+", default=["0", "1", "2", "4", "8", "platt"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=10000, help="prior draws per seed")
    parser.add_argument("--k", type=int, default=300, help="draws resampled (FID images)")
    parser.add_argument("--n_calibration", type=int, default=2000, help="Platt fit split")
    parser.add_argument("--page", type=Path, default=Path("docs/gans.md"))
    parser.add_argument("--out", type=Path, default=Path("logs/tables/beta_grid/grid.json"))
    parser.add_argument("--data_dir", default=None, help="Fashion-MNIST folder (FID, Platt)")
    parser.add_argument("--n_real", type=int, default=None, help="real images of FID/IS")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from lightning_ex2.gan import FashionMNISTDataModule, ImageQualityMetrics
    from lightning_ex2.gan.hardness import beta_grid
    from lightning_ex2.gan.platt import held_out_platt
    from lightning_ex2.lightning.cli import build_cli
    from lightning_ex2.output.files import save_json

    sys.argv = sys.argv[:1]
    cli = build_cli(["--config", args.config], run=False)
    target = cli.model.target
    metric = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ImageQualityMetrics))
    if args.n_real is not None:
        metric.scorer.n_real = args.n_real
    if args.data_dir is not None:
        metric.scorer.real_data.data_dir = args.data_dir
    metric.setup_real(None, torch.device("cpu"))
    betas: dict[str, float] = {}
    platt = None
    for b in args.betas:
        if b == "platt":
            held_out = FashionMNISTDataModule(data_dir=args.data_dir, split="test")
            platt = held_out_platt(
                target.generator, target._image_logit, held_out, args.n_calibration, 0
            )
            betas[b] = round(platt["logit_scale"], 4)
        else:
            betas[b] = float(b)
    rows = beta_grid(
        target, betas, lambda z: metric.evaluate(z, target.decode), args.seeds, args.n, args.k
    )
    save_json(ROOT / args.out, {"betas": betas, "platt": platt, "rows": rows})
    table = render(rows, betas)
    seeds = ", ".join(map(str, args.seeds))
    note = (
        f"Mean ± sd over {len(args.seeds)} seed(s) ({seeds}); {args.n} prior draws per seed, "
        f"{args.k} resampled per beta (the same Gumbel keys for every beta of a seed); FID/IS "
        f"against {metric.scorer.n_real} test images with the config's scorer "
        f"(`{args.config}`)."
    )
    if platt is not None:
        note += (
            f" Platt fit of the discriminator on {platt['n']} held-out test images and as many "
            f"fresh fakes: a = {platt['logit_scale']:.4f}, b = {platt['logit_bias']:.4f} "
            f"(log-loss {platt['log_loss']:.3f} → {platt['log_loss_scaled']:.3f})."
        )
    block = table + "\n" + note + "\n" + stamp.footer()
    print(block)
    written = write_pages([ROOT / args.page], "beta-grid", block)
    print("wrote", ", ".join(map(str, written)) or "nothing (no beta-grid markers)")
    return 0 if np.isfinite([r.get("tilt_std", np.nan) for r in rows]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
