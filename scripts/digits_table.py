"""The digits experiment: FID/IS of a GAN's samples, plain vs. MCMC in latent space, over seeds.

CPU version of the paper's CIFAR-10 table (Samsonov et al. 2022, Sec. 5): a small
GAN trained on scikit-learn's 8x8 digits (shipped: ``lightning_ex2/gan/weights/digits_gan_*.pt``),
its latent space sampled as an energy-based model (log pi(z) = log N(z; 0, I) + d(G(z)))
by ULA, MALA, i-SIR, Ex2MCMC and FlEx2MCMC at an equal budget of target evaluations per
chain, FID and IS computed with the shipped DigitsClassifier (features / class logits)
against all 1797 real digits. Every step is a documented command, once per seed K::

    lightning-ex2 fit --config configs/gan/digits_<method>.yaml --trainer.max_steps W \\
        --seed_everything=K --model.init_args.seed=K --data.seed=K
    lightning-ex2 sample --config configs/gan/digits_<method>.yaml --ckpt_path ... --n_steps S \\
        --seed_everything=K --model.init_args.seed=K --data.seed=K

    python scripts/digits_table.py                # all of it, then writes the table
    python scripts/digits_table.py --train-gan    # retrain the GAN first and sample that one

"none" is the plain generator: FID/IS of G(z) for z drawn from the prior (seed K).
Budget: one target evaluation = one log pi (with or without its gradient);
per step ULA/MALA cost 1, i-SIR N - 1 = 9, Ex2MCMC/FlEx2MCMC 9 + 1 + 3 = 13.
FID, IS and wall time are the mean ± sample standard deviation over the seeds. With
``--train-gan`` the GAN is trained by ``lightning-ex2 fit --config
configs/gan/digits_gan_train.yaml`` (into ``logs/gan/digits/``) and the sampler runs load
it instead of the shipped weights.

The table and a footer (command, commit, date, CPU, threads, wall time) replace the
block between ``<!-- digits-table:start -->`` and ``<!-- digits-table:end -->`` in each
``--write`` page that has those markers (default: ``docs/results.md`` and ``README.md``;
``--write`` alone writes none); ``<out>/digits.md`` and ``<out>/digits.json`` (the per-seed
values) are always written.
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

from lightning_ex2.gan import ImageQualityMetrics
from lightning_ex2.lightning.cli import build_cli
from lightning_ex2.output.files import save_text
from lightning_ex2.stamp import Stamp, mean_spread, write_pages

ROOT = Path(__file__).resolve().parents[1]
COST = {"ula": 1, "mala": 1, "isir": 9, "ex2mcmc": 13, "flex2mcmc": 13}
TRAINED = "logs/gan/digits"  # where configs/gan/digits_gan_train.yaml exports the GAN
TARGET = "--model.init_args.target.init_args"


def run(cmd: list[str]) -> float:
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def seed_args(seed: int) -> list[str]:
    """The CLI flags that seed a run: global RNG, the chains' moves, their initial points."""
    return [f"--seed_everything={seed}", f"--model.init_args.seed={seed}", f"--data.seed={seed}"]


def plain_generator(n_chains: int, seed: int, gan: list[str]) -> dict:
    """FID/IS of G(z), z ~ N(0, I) drawn with ``seed``: the baseline row, same metric code."""
    cli = build_cli(["--config", str(ROOT / "configs/gan/digits_isir.yaml"), *gan], run=False)
    target = cli.model.target
    metric = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ImageQualityMetrics))
    metric.setup_real(None, torch.device("cpu"))
    z = target.prior_sample(n_chains, generator=torch.Generator().manual_seed(seed))
    return metric.evaluate(z, target.decode)


def render(rows: list[tuple[str, int, int, list[dict]]]) -> str:
    """One row per method: FID, IS and wall time as mean ± sd over the seeds."""
    lines = [
        "| method | sampling steps | target evals / chain | FID ↓ | IS ↑ | wall s (fit + sample) |",
        "|---|---|---|---|---|---|",
    ]
    for method, steps, evals, runs in rows:
        wall = "0" if not steps else mean_spread([r["wall"] for r in runs], ".0f")
        lines.append(
            f"| {method} | {steps} | {evals} | {mean_spread([r['fid'] for r in runs], '.1f')} | "
            f"{mean_spread([r['is'] for r in runs], '.2f')} | {wall} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    stamp = Stamp()
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("logs/tables"))
    parser.add_argument("--n_chains", type=int, default=1000, help="chains per method")
    parser.add_argument(
        "--train-gan",
        "--train_gan",
        action="store_true",
        help=f"train the GAN (configs/gan/digits_gan_train.yaml, into {TRAINED}/) and sample it "
        "instead of the shipped weights",
    )
    parser.add_argument(
        "--gan_steps", type=int, default=None, help="GAN training steps (default: the config's)"
    )
    parser.add_argument(
        "--write",
        type=Path,
        nargs="*",
        default=[Path("docs/results.md"), Path("README.md")],
        help="Markdown pages whose digits-table block gets the table",
    )
    args = parser.parse_args(argv)
    exe = str(Path(sys.executable).with_name("lightning-ex2"))
    quiet = ["--trainer.enable_progress_bar", "false"]
    gan: list[str] = []  # the shipped GAN unless --train-gan
    gan_seconds = None
    if args.train_gan:
        shutil.rmtree(ROOT / TRAINED / "fit", ignore_errors=True)
        steps = [] if args.gan_steps is None else ["--trainer.max_steps", str(args.gan_steps)]
        gan_seconds = run(
            [exe, "fit", "--config", "configs/gan/digits_gan_train.yaml", *quiet, *steps]
        )
        gan = [
            f"{TARGET}.generator_ckpt={ROOT / TRAINED / 'generator.pt'}",
            f"{TARGET}.discriminator_ckpt={ROOT / TRAINED / 'discriminator.pt'}",
        ]
    n_chains = args.n_chains
    plain = [plain_generator(n_chains, seed, gan) for seed in args.seeds]
    extractor = plain[0]["feature_extractor"]
    rows = [("none (generator)", 0, 0, [{"fid": m["fid"], "is": m["is"]} for m in plain])]
    for method in args.methods:
        config = f"configs/gan/digits_{method}.yaml"
        steps = args.budget // COST[method]
        runs = []
        for seed in args.seeds:
            version = f"table-seed{seed}"
            # one run per folder (README): the table's previous run of this method goes first
            shutil.rmtree(ROOT / f"logs/gan/digits_{method}/{version}", ignore_errors=True)
            common = [*seed_args(seed), "--data.n_chains", str(n_chains), *gan, *quiet]
            fit_s = run(
                [exe, "fit", "--config", config, "--trainer.max_steps", str(args.warmup),
                 "--trainer.logger.init_args.version", version, *common]
            )  # fmt: skip
            out = args.out / "digits" / method / f"seed{seed}"
            sample_s = run(
                [exe, "sample", "--config", config,
                 "--ckpt_path", f"logs/gan/digits_{method}/{version}/checkpoints/last.ckpt",
                 "--n_steps", str(steps), "--output_dir", str(out), "--overwrite", "true",
                 "--progress", "false", *common]
            )  # fmt: skip
            m = json.loads((ROOT / out / "summary.json").read_text())["image_metrics"]
            runs.append({"fid": m["fid"], "is": m["is"], "wall": fit_s + sample_s})
        rows.append((method, steps, steps * COST[method], runs))
    seeds = ", ".join(map(str, args.seeds))
    table = (
        render(rows)
        + f"\n\nMean ± sd over {len(args.seeds)} seed(s) ({seeds}); {n_chains} chains. "
        + f"Feature extractor: {extractor}. "
        + (
            f"GAN trained by `configs/gan/digits_gan_train.yaml` ({gan_seconds:.0f} s).\n"
            if gan_seconds is not None
            else "GAN: the shipped `lightning_ex2/gan/weights/digits_gan_*.pt`.\n"
        )
    )
    print(table)
    out_dir = ROOT / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    save_text(out_dir / "digits.md", table)
    per_seed = {"seeds": args.seeds, "rows": {r[0]: r[3] for r in rows}}
    save_text(out_dir / "digits.json", json.dumps(per_seed, indent=1) + "\n")
    pages = [p if p.is_absolute() else ROOT / p for p in args.write]
    written = write_pages(pages, "digits-table", table + stamp.footer())
    for page in pages:
        print(f"{page}: {'wrote' if page in written else 'no'} digits-table block", flush=True)


if __name__ == "__main__":
    main()
