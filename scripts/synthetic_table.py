"""Run the synthetic configs of one experiment with every method and print a table.

Each method runs exactly the commands a user would type::

    lightning-ex2 fit --config configs/synthetic/<exp>/<method>.yaml ...
    lightning-ex2 sample --config ... --ckpt_path .../last.ckpt --n_steps S

then the table collects ``summary.json`` (EMD to exact samples beside the EMD
of two exact samples, ESS, R-hat, acceptance, wall time) and, for mixtures,
the total variation between the mode frequencies of the draws and the true
mode weights.

    python scripts/synthetic_table.py --experiment mixture25 --fit-steps 300 --sample-steps 300
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from lightning_ex2.cli import build_cli
from lightning_ex2.io import save_text

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def mode_tv(config: Path, samples: np.ndarray) -> float | None:
    target = build_cli(["--config", str(config)], run=False).model.target
    if not hasattr(target, "assign"):
        return None
    assigned = target.assign(torch.from_numpy(samples).to(target.weights.dtype)).flatten()
    freq = np.bincount(assigned.numpy(), minlength=target.n_components) / assigned.numel()
    return float(0.5 * np.abs(freq - target.weights.double().numpy()).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="mixture25")
    parser.add_argument(
        "--methods", nargs="+", default=["mala", "hmc", "isir", "ex2mcmc", "flex2mcmc"]
    )
    parser.add_argument("--fit-steps", type=int, default=300)
    parser.add_argument("--sample-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("logs/tables"))
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("lightning-ex2"))
    rows = []
    for method in args.methods:
        config = Path("configs/synthetic") / args.experiment / f"{method}.yaml"
        log_name = f"synthetic/{args.experiment}/{method}"
        # one run per folder (README): the table's previous run of this method goes first
        shutil.rmtree(ROOT / "logs" / log_name / "table", ignore_errors=True)
        run(
            [
                exe,
                "fit",
                "--config",
                str(config),
                "--trainer.max_steps",
                str(args.fit_steps),
                "--trainer.logger.init_args.version",
                "table",
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        out = args.out / args.experiment / method
        run(
            [
                exe,
                "sample",
                "--config",
                str(config),
                "--ckpt_path",
                f"logs/{log_name}/table/checkpoints/last.ckpt",
                "--n_steps",
                str(args.sample_steps),
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
        samples = np.load(ROOT / out / "samples.npz")["samples"]
        summary["mode_tv"] = mode_tv(ROOT / config, samples)
        rows.append((method, summary))

    def fmt(v, spec=".3g"):
        return "-" if v is None else format(v, spec)

    lines = [
        "| method | EMD | EMD exact-vs-exact | mode-weight TV | ESS (mean) | R-hat (max) "
        "| accept global | accept local | sample s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, s in rows:
        lines.append(
            f"| {method} | {fmt(s.get('emd'))} | {fmt(s.get('emd_exact'))} | "
            f"{fmt(s['mode_tv'], '.2f')} | {fmt(s['ess_geyer_mean'], '.0f')} | "
            f"{fmt(s['rhat_split_max'], '.2f')} | {fmt(s['accept_global_mean'], '.2f')} | "
            f"{fmt(s['accept_local_mean'], '.2f')} | {fmt(s['wall_seconds'], '.1f')} |"
        )
    table = "\n".join(lines)
    print(table)
    path = ROOT / args.out / f"{args.experiment}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_text(path, table + "\n")


if __name__ == "__main__":
    main()
