"""Does a GAN target's tilt track image quality? FID of prior draws selected by the tilt.

Draws ``--n`` latents from the prior, ranks them by the tilt ``log pi(z) - log N(z; 0, I)``
(the calibrated discriminator logit) and prints the FID/IS of the ``--k`` highest-tilt draws,
of the ``--k`` lowest and of ``--k`` random ones, with the scorer of the config's
``ImageQualityMetrics`` (the table's). If the top draws are no better than random ones, exact
samples of pi cannot improve FID either, whatever the sampler::

    python scripts/gan_tilt_check.py --config configs/gan/fashion_calibrated_mala.yaml
"""

from __future__ import annotations

import argparse
import json
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--k", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from lightning_ex2.gan import ImageQualityMetrics
    from lightning_ex2.lightning.cli import build_cli

    sys.argv = sys.argv[:1]
    cli = build_cli(["--config", args.config], run=False)
    target = cli.model.target
    metric = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ImageQualityMetrics))
    metric.setup_real(None, torch.device("cpu"))
    g = torch.Generator().manual_seed(args.seed)
    z = target.prior_sample(args.n, generator=g)
    with torch.no_grad():
        tilt = torch.cat([target.log_prob(c) - target.prior_log_prob(c) for c in z.split(1000)])
    order = torch.argsort(tilt, descending=True)
    picks = {
        "top": order[: args.k],
        "bottom": order[-args.k :],
        "random": torch.randperm(args.n, generator=g)[: args.k],
    }
    out = {}
    for name, idx in picks.items():
        res = metric.evaluate(z[idx], target.decode)
        out[name] = {
            "fid": round(float(res["fid"]), 2),
            "is": round(float(res["is"]), 3),
            "tilt_mean": round(float(tilt[idx].mean()), 2),
        }
    print(json.dumps({"config": args.config, "n": args.n, "k": args.k, **out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
