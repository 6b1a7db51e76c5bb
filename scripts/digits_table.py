"""The digits experiment: FID/IS of a GAN's samples, plain vs. MCMC in latent space.

CPU version of the paper's CIFAR-10 table (Samsonov et al. 2022, Sec. 5): a small
GAN trained on scikit-learn's 8x8 digits, its latent space sampled as an
energy-based model (log pi(z) = log N(z; 0, I) + d(G(z))) by ULA, MALA, i-SIR,
Ex2MCMC and FlEx2MCMC at an equal budget of target evaluations per chain, FID
and IS computed with the shipped DigitsClassifier (features / class logits)
against all 1797 real digits. Every step is a documented command::

    lightning-ex2 fit --config configs/gan/digits_gan_train.yaml          # the GAN
    lightning-ex2 fit --config configs/gan/digits_<method>.yaml --trainer.max_steps W
    lightning-ex2 sample --config configs/gan/digits_<method>.yaml --ckpt_path ... --n_steps S

    python scripts/digits_table.py            # all of it, then prints the table

"none" is the plain generator: FID/IS of G(z) for z drawn from the prior.
Budget: one target evaluation = one log pi (with or without its gradient);
per step ULA/MALA cost 1, i-SIR N - 1 = 9, Ex2MCMC/FlEx2MCMC 9 + 1 + 3 = 13.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from lightning_ex2.callbacks import ImageQualityMetrics
from lightning_ex2.cli import build_cli
from lightning_ex2.io import save_text

ROOT = Path(__file__).resolve().parents[1]
COST = {"ula": 1, "mala": 1, "isir": 9, "ex2mcmc": 13, "flex2mcmc": 13}


def run(cmd: list[str]) -> float:
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def plain_generator(n_chains: int) -> dict:
    """FID/IS of G(z), z ~ N(0, I): the baseline row, with the same metric code."""
    cli = build_cli(["--config", "configs/gan/digits_isir.yaml"], run=False)
    target = cli.model.target
    metric = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ImageQualityMetrics))
    metric.setup_real(None, torch.device("cpu"))
    z = target.prior_sample(n_chains, generator=torch.Generator().manual_seed(0))
    return metric.evaluate(z, target.decode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget",
        type=int,
        default=1300,
        help="target evaluations per chain in the sampling phase",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="fit steps (step-size adaptation, flow training) per method",
    )
    parser.add_argument("--methods", nargs="+", default=list(COST))
    parser.add_argument("--out", type=Path, default=Path("logs/tables"))
    parser.add_argument("--n_chains", type=int, default=1000, help="chains per method")
    parser.add_argument(
        "--gan_steps", type=int, default=None, help="GAN training steps (default: the config's)"
    )
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("lightning-ex2"))
    times: dict[str, float] = {}
    if not (ROOT / "logs/gan/digits/generator.pt").is_file():
        times["gan"] = run(
            [
                exe,
                "fit",
                "--config",
                "configs/gan/digits_gan_train.yaml",
                "--trainer.enable_progress_bar",
                "false",
                *([] if args.gan_steps is None else ["--trainer.max_steps", str(args.gan_steps)]),
            ]
        )
    n_chains = args.n_chains
    rows = [("none (generator)", 0, 0, plain_generator(n_chains), 0.0)]
    for method in args.methods:
        config = f"configs/gan/digits_{method}.yaml"
        steps = args.budget // COST[method]
        # one run per folder (README): the table's previous run of this method goes first
        shutil.rmtree(ROOT / f"logs/gan/digits_{method}/fit", ignore_errors=True)
        fit_s = run(
            [
                exe,
                "fit",
                "--config",
                config,
                "--trainer.max_steps",
                str(args.warmup),
                "--data.n_chains",
                str(n_chains),
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        out = args.out / "digits" / method
        sample_s = run(
            [
                exe,
                "sample",
                "--config",
                config,
                "--ckpt_path",
                f"logs/gan/digits_{method}/fit/checkpoints/last.ckpt",
                "--n_steps",
                str(steps),
                "--data.n_chains",
                str(n_chains),
                "--output_dir",
                str(out),
                "--overwrite",
                "true",
                "--progress",
                "false",
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        summary = json.loads((ROOT / out / "summary.json").read_text())
        rows.append(
            (method, steps, steps * COST[method], summary["image_metrics"], fit_s + sample_s)
        )
    lines = [
        "| method | sampling steps | target evals / chain | FID ↓ | IS ↑ | wall s (fit + sample) |",
        "|---|---|---|---|---|---|",
    ]
    for method, steps, evals, m, wall in rows:
        lines.append(
            f"| {method} | {steps} | {evals} | {m['fid']:.2f} | "
            f"{m['is']:.2f} ± {m['is_std']:.2f} | {wall:.0f} |"
        )
    extractor = rows[0][3]["feature_extractor"]
    table = "\n".join(lines) + f"\n\nFeature extractor: {extractor}.\n"
    if "gan" in times:
        table += f"GAN training: {times['gan']:.0f} s.\n"
    print(table)
    path = ROOT / args.out / "digits.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_text(path, table)


if __name__ == "__main__":
    main()
