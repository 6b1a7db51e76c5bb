"""The paper's GAN experiment on Fashion-MNIST: FID/IS of latent-space MCMC vs. the plain generator.

CPU version of Samsonov et al. 2022 (arXiv 2111.02702), Sec. 5, CIFAR-10 table: a DCGAN with a
64-D latent space trained on Fashion-MNIST, its latent space sampled as an energy-based model
(log pi(z) = log N(z; 0, I) + d(G(z))) by ULA, MALA, i-SIR, Ex2MCMC and FlEx2MCMC from the
prior, at an equal budget of target evaluations per chain, over several seeds. FID and IS of
the chains' final images against the 10000 Fashion-MNIST test images, with the shipped
FashionClassifier as feature network. Every step is a documented command::

    apt-get install dataset-fashion-mnist                                   # the data
    lightning-ex2 fit --config configs/gan/fashion_gan_train.yaml           # --train_gan
    lightning-ex2 fit --config configs/gan/fashion_<method>.yaml --trainer.max_steps W ...
    lightning-ex2 sample --config configs/gan/fashion_<method>.yaml --ckpt_path ... --n_steps S

    python scripts/fashion_table.py --prefix fashion_calibrated   # all of it (README section)
    python scripts/fashion_table.py --prefix fashion              # the uncalibrated control
    python scripts/fashion_table.py --prefix fashion_tempered --budget 1000 5000  # beta = 4

Budget: one target evaluation = one log pi with or without its gradient, per chain. Per step
ULA/MALA cost 1, i-SIR N - 1 = 9, Ex2MCMC/FlEx2MCMC 9 + 1 + 3 = 13 (FlEx2MCMC 14 while its
flow trains: one reparameterised flow sample per chain for the backward KL). Each method
spends ``warmup_fraction`` of the budget in ``fit`` (step-size adaptation, flow training) and
the rest in ``sample``. The GAN is the shipped one (``lightning_ex2/gan/weights/
fashion_gan_{generator,discriminator}.pt``, which the configs load) unless ``--train_gan``.

The target's ``beta`` (``GANLatentTarget``; 4 in ``fashion_tempered``) tempers the tilt
``beta d(G(z))``; beside each row the mean tilt at the first and last draw, and its distance
to pi_beta that does not depend on FID: the mean tilt at the last draw minus the
importance-weighted mean tilt of pi_beta from ``--reference_n`` prior draws. Several
``--budget`` values run every method at each (``<out>/budget<b>/...``), one table row and
one FID curve figure per method and budget.

Writes ``<out>/<method>/seed<k>/`` (the output sets of ``sample``; their logs beside them in
``<out>/<method>/logs/``, the fit runs in ``<out>/fits/``; the script deletes its own earlier
runs of a method and seed first), ``<out>/table.md``, ``<out>/target_diagnostics.json`` (the
target's tilt std, importance ESS, implied i-SIR acceptance, pilot MALA step),
``<out>/curves.json`` (FID/IS of every kept draw against target evaluations per chain), under
``--figures`` the FID curves (one per method, mean over seeds, band min..max), trajectory
grids and the energy landscape (PNG), and the section of ``--readme`` (docs/gans.md) between
``<!-- <prefix>-table:start -->`` / ``<!-- <prefix>-table:end -->``. ``--data_dir``/``--n_real``
point the FID's real images elsewhere (the CI test's synthetic files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_ex2.checks import load_checkpoint
from lightning_ex2.stamp import Stamp, mean_spread, replace_block

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ula", "mala", "mala_fixed", "isir", "ex2mcmc", "flex2mcmc")
#: what runs without ``--methods``
DEFAULT_METHODS = ("mala", "mala_fixed", "isir", "ex2mcmc", "flex2mcmc")
LABELS = {
    "none": "plain generator",
    "ula": "ULA",
    "mala": "MALA (adapted)",
    "mala_fixed": "MALA (h = 0.01 fixed)",
    "isir": "i-SIR",
    "ex2mcmc": "Ex2MCMC",
    "flex2mcmc": "FlEx2MCMC",
}
#: Target evaluations per chain and step while sampling (N = 10 particles, 3 local steps).
COST = {"ula": 1, "mala": 1, "mala_fixed": 1, "isir": 9, "ex2mcmc": 13, "flex2mcmc": 13}
#: ... and during ``fit`` (FlEx2MCMC: + 1 backward-KL flow sample per chain).
FIT_COST = {**COST, "flex2mcmc": 14}


def thin_of(sample_steps: int) -> int:
    """Every how many steps ``sample`` keeps a draw: about 10 kept draws per run (FID curves)."""
    return max(1, sample_steps // 10)


def plan(method: str, budget: int, warmup_fraction: float) -> tuple[int, int, int]:
    """``(fit_steps, sample_steps, target_evals)`` of ``method`` within ``budget`` evals per chain.

    ``fit`` gets ``round(warmup_fraction * budget / FIT_COST)`` steps (at least 1), ``sample``
    the whole remaining budget (at least 1 step).

    >>> plan("ex2mcmc", 260, 0.25)
    (5, 15, 260)
    >>> plan("mala", 260, 0.25)
    (65, 195, 260)
    """
    if method not in COST:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    fit_steps = max(1, round(warmup_fraction * budget / FIT_COST[method]))
    left = budget - fit_steps * FIT_COST[method]
    sample_steps = max(1, left // COST[method])
    return fit_steps, sample_steps, fit_steps * FIT_COST[method] + sample_steps * COST[method]


# ------------------------------------------------------------------------------ results
@dataclass
class Row:
    """One method's results over seeds (``fid``, ``is``, ``wall`` lists, same order as seeds)."""

    method: str
    fit_steps: int = 0
    sample_steps: int = 0
    evals: int = 0
    fid: list[float] = field(default_factory=list)
    inception_score: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


def _diag(values: list[dict[str, Any]], key: str, fmt: str = "{:.2f}") -> str:
    got = [d[key] for d in values if d.get(key) is not None]
    return fmt.format(float(np.mean(got))) if got else "–"


def render_table(rows: Sequence[Row], seeds: Sequence[int], reference: float | None = None) -> str:
    """Markdown table: method, steps, evals, FID, IS, wall time, and the diagnostics.

    ``reference``: the importance-weighted mean tilt of pi_beta; each row's last column is its
    mean tilt at the last draw minus it, mean ± sd over seeds (no column when ``None``).
    """
    gap = reference is not None
    lines = [
        "| method | fit + sample steps | target evals / chain | FID ↓ | IS ↑ "
        "| wall s (commands) | of which sampling s | accept (global / local) | MALA step h "
        "| particle ESS / N | energy start → end | mean tilt β d(G(z)) start → end "
        "| class mix: entropy / largest share |" + (" tilt end − E_π_β[tilt] |" if gap else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if gap else ""),
    ]
    for r in rows:
        steps = "–" if r.method == "none" else f"{r.fit_steps} + {r.sample_steps}"
        accept = f"{_diag(r.diagnostics, 'accept_global_mean')} / {_diag(r.diagnostics, 'accept_local_mean')}"
        energy = (
            f"{_diag(r.diagnostics, 'energy_start', '{:.1f}')} → "
            f"{_diag(r.diagnostics, 'energy_end', '{:.1f}')}"
        )
        logit = (
            f"{_diag(r.diagnostics, 'd_start', '{:.3f}')} → "
            f"{_diag(r.diagnostics, 'd_end', '{:.3f}')}"
        )
        lines.append(
            f"| {LABELS[r.method]} | {steps} | {r.evals} | {mean_spread(r.fid, '.2f')} | "
            f"{mean_spread(r.inception_score, '.2f')} | {mean_spread(r.wall, '.0f')} | "
            f"{_diag(r.diagnostics, 'sample_seconds', '{:.0f}')} | {accept} | "
            f"{_diag(r.diagnostics, 'step_size', '{:.3g}')} | "
            f"{_diag(r.diagnostics, 'particle_ess_mean')} | {energy} | {logit} | "
            f"{_diag(r.diagnostics, 'class_entropy')} / {_diag(r.diagnostics, 'class_max')} |"
            + (
                f" {mean_spread([d['d_end'] - reference for d in r.diagnostics if d.get('d_end') is not None], '+.3f')} |"
                if gap
                else ""
            )
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ figures
def trajectory_png(
    samples: np.ndarray,
    decode: Callable[[torch.Tensor], torch.Tensor],
    path: Path,
    n_rows: int = 6,
    n_cols: int = 8,
) -> Path:
    """Grid PNG of ``G(z)``: ``n_rows`` chains (rows) at ``n_cols`` evenly spaced draws.

    Args:
        samples: draws ``[C, T, D]`` (chains, draws, latent dim).
        decode: latents ``[n, D]`` -> images ``[n, C, H, W]`` in ``[-1, 1]``.
    """
    from PIL import Image

    from lightning_ex2.output.figures import trajectory_grid
    from lightning_ex2.output.files import write_atomic

    if samples.ndim != 3:
        raise ValueError(f"samples must be [chains, draws, dim], got {samples.shape}")
    rows = min(n_rows, samples.shape[0])
    cols = np.unique(np.linspace(0, samples.shape[1] - 1, min(n_cols, samples.shape[1])).round())
    z = torch.as_tensor(samples[:rows][:, cols.astype(int)], dtype=torch.float32)
    with torch.no_grad():
        images = decode(z.reshape(-1, z.shape[-1]))
    grid = trajectory_grid(
        images.reshape(rows, len(cols), *images.shape[1:])
    )  # [C, H, W] in [0, 1]
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    image = image.resize((image.width * 2, image.height * 2), Image.NEAREST)
    return write_atomic(path, lambda f: image.save(f, format="PNG", optimize=True))


def small_png(path: Path, colors: int = 64) -> Path:
    """Re-save the PNG at ``path`` with an adaptive palette of ``colors`` (a few times smaller)."""
    from PIL import Image

    from lightning_ex2.output.files import write_atomic

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=colors)
    return write_atomic(path, lambda f: small.save(f, format="PNG", optimize=True))


def landscape_png(target: Any, finals: dict[str, np.ndarray], path: Path) -> Path:
    """The energy-landscape figure: prior draws and each method's final latents ``[C, D]``
    (``finals``, keyed by method) over ``-log pi`` on a 2-D plane of the latent space."""
    from lightning_ex2.output.figures import energy_landscape_figure, save_figure

    prior = target.prior_sample(1000, generator=torch.Generator().manual_seed(0)).numpy()
    fig = energy_landscape_figure(
        target,
        {"prior": prior, **{LABELS[k]: v for k, v in finals.items()}},
        title="Fashion GAN: final latents over -log pi(z) (2-D plane of the 64-D latent)",
    )
    save_figure(fig, path)
    return small_png(path, colors=128)


def energy_curve(log_prob: np.ndarray) -> tuple[float, float]:
    """Mean energy ``-log pi`` over chains at the first and the last kept draw (``log_prob [C, T]``)."""
    return float(-log_prob[:, 0].mean()), float(-log_prob[:, -1].mean())


def logit_curve(log_prob: np.ndarray, samples: np.ndarray) -> tuple[float, float]:
    """Mean discriminator logit ``d(G(z)) = log pi(z) - log N(z; 0, I)`` at the first and last draw.

    Args:
        log_prob: ``[C, T]``; samples: ``[C, T, D]`` (the GAN target's ``log pi = log N + d``).
    """
    log_normal = -0.5 * (samples**2).sum(-1) - 0.5 * samples.shape[-1] * np.log(2 * np.pi)
    d = log_prob - log_normal
    return float(d[:, 0].mean()), float(d[:, -1].mean())


# ------------------------------------------------------------------------------ running
def run(cmd: list[str], log: Path) -> float:
    """Run a documented command (output to ``log``); return its wall time in seconds."""
    print("$", " ".join(cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"command failed ({done.returncode}); see {log}")
    return time.perf_counter() - start


def remove_previous(*paths: Path) -> None:
    """Delete this script's own earlier outputs (an output set, a fit's log folder) at ``paths``.

    Only folders the script itself creates are passed here, so a failed or older run never
    makes the next one refuse its folder.
    """
    import shutil

    for path in paths:
        path = ROOT / path
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


@dataclass(frozen=True)
class Task:
    """One ``fit`` + ``sample`` run: ``method`` at ``budget`` evaluations per chain, ``seed``."""

    budget: int
    method: str
    seed: int
    several: bool  # several budgets: each under ``<out>/budget<b>/``
    prefix: str
    warmup_fraction: float

    def base(self, out: Path) -> Path:
        return out / f"budget{self.budget}" if self.several else out

    def output(self, out: Path) -> Path:
        return self.base(out) / self.method / f"seed{self.seed}"

    def logs(self, out: Path) -> Path:  # beside the output set, never inside it
        return self.base(out) / self.method / "logs"

    def fits(self, out: Path) -> Path:  # the fit runs' TensorBoard logs and checkpoints
        return self.base(out) / "fits"

    def checkpoint(self, out: Path) -> Path:
        name = f"{self.prefix}_{self.method}"
        return self.fits(out) / name / f"seed{self.seed}" / "checkpoints" / "last.ckpt"

    def timing(self, out: Path) -> Path:
        return self.logs(out) / f"seed{self.seed}.timing.json"

    def done(self, out: Path) -> bool:
        """The output set is complete (its manifest is written last) and its timing recorded."""
        return (ROOT / self.output(out) / "manifest.json").is_file() and (
            ROOT / self.timing(out)
        ).is_file()

    def cost(self) -> float:
        """Rough relative wall time (gradient evaluations cost about twice the others)."""
        grad = {"ula": 1.0, "mala": 1.0, "mala_fixed": 1.0, "isir": 0.0}.get(self.method, 0.3)
        return self.budget * (1.0 + grad)


def execute(
    tasks: Sequence[Task], out: Path, configs: dict[str, str], common: Sequence[str], exe: str,
    jobs: int = 1, resume: bool = False,
) -> int:  # fmt: skip
    """Run every task's ``fit`` then ``sample`` command, ``jobs`` tasks at a time (longest first).

    Each command is its own process at one torch thread, so ``jobs`` up to the number of cores
    runs that many times faster. With ``resume`` a task whose output set is complete is kept;
    every other task first deletes its own earlier outputs. Returns how many tasks were kept.
    """
    from concurrent.futures import ThreadPoolExecutor

    from lightning_ex2.output.files import save_json

    def one(task: Task) -> None:
        seeded = [
            *common,
            f"--seed_everything={task.seed}",
            f"--model.init_args.seed={task.seed}",
            f"--data.seed={task.seed}",
            f"--trainer.logger.init_args.save_dir={task.fits(out)}",
            f"--trainer.logger.init_args.version=seed{task.seed}",
        ]
        fit_steps, sample_steps, _ = plan(task.method, task.budget, task.warmup_fraction)
        config, logs = configs[task.method], task.logs(out)
        remove_previous(task.output(out), task.checkpoint(out).parents[1], task.timing(out))
        fit_s = run(
            [exe, "fit", "--config", config, f"--trainer.max_steps={fit_steps}", *seeded],
            logs / f"seed{task.seed}.fit.log",
        )  # fmt: skip
        sample_s = run(
            [exe, "sample", "--config", config, *seeded, "--ckpt_path",
             str(task.checkpoint(out)), f"--n_steps={sample_steps}",
             f"--thin={thin_of(sample_steps)}", "--output_dir", str(task.output(out)),
             "--progress", "false"],
            logs / f"seed{task.seed}.sample.log",
        )  # fmt: skip
        save_json(ROOT / task.timing(out), {"fit_s": fit_s, "sample_s": sample_s})

    todo = [t for t in tasks if not (resume and t.done(out))]
    if len(todo) < len(tasks):
        print(f"--resume: keeping {len(tasks) - len(todo)} finished run(s)", flush=True)
    todo.sort(key=lambda t: -t.cost())
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(one, t) for t in todo]:
            future.result()
    return len(tasks) - len(todo)


def config_path(prefix: str, method: str) -> str:
    return f"configs/gan/{prefix}_{method}.yaml"


def build(config: str, overrides: Sequence[str] = ()):  # type: ignore[no-untyped-def]
    from lightning_ex2.lightning.cli import build_cli

    return build_cli(["--config", config, *overrides], run=False)


def plain_generator(config: str, n_chains: int, seeds: Sequence[int], overrides: Sequence[str]):  # type: ignore[no-untyped-def]
    """FID/IS results of ``G(z)``, ``z ~ N(0, I)`` (the baseline row) per seed, same metric code."""
    from lightning_ex2.gan import ImageQualityMetrics

    cli = build(config, overrides)
    target = cli.model.target
    metric = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ImageQualityMetrics))
    metric.setup_real(None, torch.device("cpu"))
    results = []
    for seed in seeds:
        z = target.prior_sample(n_chains, generator=torch.Generator().manual_seed(seed))
        res = metric.evaluate(z, target.decode)
        with torch.no_grad():
            log_prob = torch.cat([target.log_prob(c) for c in z.split(1000)]).numpy()
        res["d_mean"] = logit_curve(log_prob[:, None], z.numpy()[:, None])[0]
        res |= class_mix(metric, target, z)
        results.append(res)
    return results, target, metric


def sampled_step(ckpt: Path) -> float | None:
    """Mean over chains of the step size ``sample`` runs with, from the fit checkpoint
    (frozen step, or the dual-averaging average a frozen run would keep); ``None`` if the
    checkpoint holds no step-size tuning (i-SIR)."""
    sd = load_checkpoint(ckpt, mmap=False).get("state_dict", {})
    key = next((k for k in ("tuning.params.step_size", "tuning.step_size") if k in sd), None)
    if key is None:  # the state key moved to tuning.params; older checkpoints: tuning.step_size
        return None
    step = sd[key].double()
    if "tuning.frozen" in sd and "tuning.da.log_step_avg" in sd:
        step = torch.where(
            sd["tuning.frozen"].bool(), step, sd["tuning.da.log_step_avg"].double().exp()
        )
    return float(step.mean())


def derived_config(config: str, out: Path, data_dir: str | None, n_real: int | None) -> str:
    """``config`` as is, or (``data_dir``/``n_real`` given) a copy under ``<out>/configs`` whose
    image metrics read their real images from ``data_dir`` (``n_real`` of them): for tests
    and for Fashion-MNIST files outside ``/usr/share/datasets/fashion-mnist``."""
    if data_dir is None and n_real is None:
        return config
    import yaml

    cfg = yaml.safe_load((ROOT / config).read_text())
    for cb in cfg["trainer"].get("callbacks", []):
        if cb["class_path"].endswith("ImageQualityMetrics"):
            args = cb["init_args"]
            if n_real is not None:
                args["n_real"] = n_real
            if data_dir is not None:
                args["real_data"].setdefault("init_args", {})["data_dir"] = data_dir
    path = ROOT / out / "configs" / Path(config).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def class_mix(metric: Any, target: Any, z: np.ndarray | torch.Tensor) -> dict[str, float]:
    """The class mix of the images of latents ``z [C, D]`` by the IS network (the shipped
    classifier): the entropy of the predicted classes' frequencies in nats (the real test
    images' 10 balanced classes: log 10 = 2.30) and the largest class's share (0.1 there).
    A target whose tilt favours some classes moves both away from the real images', which
    FID counts against it whatever each image looks like."""
    network = metric.scorer.logits  # the IS network (LatentImageMetrics.logits)
    with torch.no_grad():
        images = target.decode(torch.as_tensor(z, dtype=torch.float32))
        logits = torch.cat([network(b) for b in images.split(500)])
    share = torch.bincount(logits.argmax(-1), minlength=logits.shape[-1]).double()
    share = share / share.sum()
    nonzero = share[share > 0]
    return {
        "class_entropy": float(-(nonzero * nonzero.log()).sum()),
        "class_max": float(share.max()),
    }


def score_draws(metric: Any, target: Any, samples: np.ndarray) -> tuple[list[float], list[float]]:
    """FID and IS of every kept draw ``samples [C, T, D]`` (each draw: all chains' images),
    with the same scorer as the table's endpoint."""
    fid, iscore = [], []
    for t in range(samples.shape[1]):
        res = metric.evaluate(torch.as_tensor(samples[:, t], dtype=torch.float32), target.decode)
        fid.append(float(res["fid"]))
        iscore.append(float(res["is"]))
    return fid, iscore


def curves_png(
    curves: dict[str, list[dict[str, list[float]]]], plain: list[float], path: Path, title: str
) -> Path:
    """FID against target evaluations per chain: one curve per method (mean over seeds, band =
    min..max over seeds); the plain generator as a dashed line."""
    from lightning_ex2.output.figures import _new_figure, save_figure

    fig = _new_figure(6.5, 4.0)
    ax = fig.subplots()
    for method, runs in curves.items():
        x = np.asarray(runs[0]["evals"], dtype=float)
        n = min(len(r["fid"]) for r in runs)
        y = np.array([r["fid"][:n] for r in runs])
        ax.plot(x[:n], y.mean(0), marker="o", ms=3, label=LABELS[method])
        if len(runs) > 1:
            ax.fill_between(x[:n], y.min(0), y.max(0), alpha=0.2)
    if plain:
        ax.axhline(float(np.mean(plain)), color="k", ls="--", lw=1, label=LABELS["none"])
    ax.set_xlabel("target evaluations per chain (fit + sample)")
    ax.set_ylabel("FID (fashion-classifier features)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return small_png(path, colors=128)


def tilt_reference(target: Any, n: int, seed: int = 12345) -> dict[str, float]:
    """pi_beta's importance-weighted mean tilt from ``n`` prior draws (the table's distance
    column), with the importance ESS / n that says how far to trust it."""
    from lightning_ex2.gan.hardness import tempered_summary

    z = target.prior_sample(n, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logit = torch.cat([target.discriminator_logit(c) for c in z.split(5000)])
    logit = logit[torch.isfinite(logit)] / target.temperature
    out = tempered_summary(logit, float(getattr(target, "beta", 1.0)))
    out["n"] = int(n)
    return out


def render_diagnostics(d: dict[str, Any]) -> str:
    """One Markdown line of :func:`lightning_ex2.gan.hardness.target_diagnostics`."""
    acc = next(k for k in d if k.startswith("isir_accept_") and not k.endswith("lognormal"))
    n = acc.rsplit("_", 1)[1]
    step = (
        f"{d['mala_step']:.3g} (pilot acceptance {d['mala_pilot_accept']:.2f})"
        if "mala_step" in d
        else "–"
    )
    return (
        f"tilt std {d['tilt_std']:.2f}, importance ESS {d['importance_ess_fraction']:.2g} n, "
        f"implied i-SIR acceptance (N = {n}) {d[acc]:.3f} (log-normal approximation "
        f"{d[acc + '_lognormal']:.3f}), adapted MALA step of a pilot {step}; "
        f"{d['n']} prior draws; in the paper's regime (ESS <= 0.1 n and tilt std >= 2): "
        f"{'yes' if d['in_paper_regime'] else 'no'}"
    )


def main(argv: list[str] | None = None) -> int:
    stamp = Stamp(
        ["python", "scripts/fashion_table.py", *(argv if argv is not None else sys.argv[1:])],
        threads=1,
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=int, nargs="+", default=[1000],
        help="target evaluations per chain (fit + sample); several: a row per method and budget",
    )  # fmt: skip
    parser.add_argument("--warmup_fraction", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--n_chains", type=int, default=300)
    parser.add_argument("--prefix", default="fashion", help="configs/gan/<prefix>_<method>.yaml")
    parser.add_argument("--train_gan", action="store_true", help="train the GAN first")
    parser.add_argument("--out", type=Path, default=None, help="default logs/tables/<prefix>")
    parser.add_argument("--figures", type=Path, default=None, help="default docs/fashion/<prefix>")
    parser.add_argument(
        "--readme", type=Path, default=Path("docs/gans.md"), help="the page holding the table"
    )
    parser.add_argument("--data_dir", default=None, help="Fashion-MNIST folder of the FID images")
    parser.add_argument("--n_real", type=int, default=None, help="real images of FID/IS")
    parser.add_argument("--diagnostics_n", type=int, default=4000, help="prior draws")
    parser.add_argument(
        "--jobs", type=int, default=1,
        help="fit/sample runs at a time, one torch thread each (up to the number of cores)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true",
        help="keep runs whose output set is complete (after an interrupted table)",
    )  # fmt: skip
    parser.add_argument(
        "--reference_n", type=int, default=100000,
        help="prior draws of pi_beta's importance-weighted mean tilt (the distance column)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if len(args.seeds) < 1 or min(args.budget) < 1:
        raise SystemExit("need at least one seed and a positive --budget")
    args.out = args.out or Path("logs/tables") / args.prefix
    args.figures = args.figures or Path("docs/fashion") / args.prefix
    torch.set_num_threads(1)
    from lightning_ex2.gan.hardness import target_diagnostics
    from lightning_ex2.output.files import save_json, save_text

    exe = str(Path(sys.executable).with_name("lightning-ex2"))
    quiet = ["--trainer.enable_progress_bar", "false"]
    common = [f"--data.n_chains={args.n_chains}"]
    gan_s = None
    if args.train_gan:
        gan_s = run(
            [exe, "fit", "--config", f"configs/gan/{args.prefix}_gan_train.yaml", *quiet],
            args.out / "gan_train.log",
        )
        for name in ("generator", "discriminator"):
            common.append(
                f"--model.init_args.target.init_args.{name}_ckpt=logs/gan/{args.prefix}_gan/{name}.pt"
            )

    configs = {
        m: derived_config(config_path(args.prefix, m), args.out, args.data_dir, args.n_real)
        for m in args.methods
    }
    plain, target, metric = plain_generator(
        configs[args.methods[0]], args.n_chains, args.seeds, common
    )
    diagnostics = target_diagnostics(target, n=args.diagnostics_n)
    reference = tilt_reference(target, args.reference_n)
    diagnostics["tilt_reference"] = reference
    save_json(args.out / "target_diagnostics.json", diagnostics)
    print("target diagnostics:", render_diagnostics(diagnostics), flush=True)
    ref = reference["tilt_mean_pi"]
    rows = [Row("none")]
    for m in plain:
        rows[0].diagnostics.append({
            "d_start": m["d_mean"], "d_end": m["d_mean"],
            "class_entropy": m["class_entropy"], "class_max": m["class_max"],
        })  # fmt: skip
        rows[0].fid.append(m["fid"])
        rows[0].inception_score.append(m["is"])
        rows[0].wall.append(0.0)
    extractor = plain[0].get("feature_extractor", "")
    finals: dict[str, np.ndarray] = {}
    curves_by_budget: dict[int, dict[str, list[dict[str, list[float]]]]] = {}
    several = len(args.budget) > 1
    tasks = [
        Task(b, m, seed, several, args.prefix, args.warmup_fraction)
        for b in args.budget for m in args.methods for seed in args.seeds
    ]  # fmt: skip
    seeded_common = [*common, *quiet]
    kept = execute(tasks, args.out, configs, seeded_common, exe, args.jobs, args.resume)
    for budget, method in [(b, m) for b in args.budget for m in args.methods]:
        curves = curves_by_budget.setdefault(budget, {})
        fit_steps, sample_steps, evals = plan(method, budget, args.warmup_fraction)
        row = Row(method, fit_steps, sample_steps, evals)
        thin = thin_of(sample_steps)
        for seed in args.seeds:
            task = Task(budget, method, seed, several, args.prefix, args.warmup_fraction)
            out, ckpt = task.output(args.out), task.checkpoint(args.out)
            timing = json.loads((ROOT / task.timing(args.out)).read_text())
            summary = json.loads((ROOT / out / "summary.json").read_text())
            draws = np.load(ROOT / out / "samples.npz")
            e0, e1 = energy_curve(draws["log_prob"])
            d0, d1 = logit_curve(draws["log_prob"], draws["samples"])
            metrics = summary["image_metrics"]
            row.fid.append(metrics["fid"])
            row.inception_score.append(metrics["is"])
            row.wall.append(timing["fit_s"] + timing["sample_s"])
            row.diagnostics.append({
                **{k: summary.get(k) for k in
                   ("accept_global_mean", "accept_local_mean", "particle_ess_mean")},
                "energy_start": e0, "energy_end": e1, "d_start": d0, "d_end": d1,
                "sample_seconds": summary["wall_seconds"],
            })  # fmt: skip
            row.diagnostics[-1]["step_size"] = sampled_step(ROOT / ckpt)
            row.diagnostics[-1] |= class_mix(metric, target, draws["samples"][:, -1])
            fid, iscore = score_draws(metric, target, draws["samples"])
            fit_evals = fit_steps * FIT_COST[method]
            x = [fit_evals + (t + 1) * thin * COST[method] for t in range(len(fid))]
            k = args.seeds.index(seed)  # every chain starts at the prior: the plain generator
            x, fid, iscore = [0, *x], [plain[k]["fid"], *fid], [plain[k]["is"], *iscore]
            curves.setdefault(method, []).append({"evals": x, "fid": fid, "is": iscore})
            if seed == args.seeds[0] and budget == max(args.budget):
                trajectory_png(draws["samples"], target.decode, args.figures / f"{method}.png")
                finals[method] = draws["samples"][:, -1]
        rows.append(row)
        print(render_table(rows, args.seeds, ref), flush=True)

    curves_all = {str(b): c for b, c in curves_by_budget.items()}
    save_json(
        args.out / "curves.json",
        {"curves": curves_by_budget[args.budget[0]], "by_budget": curves_all,
         "plain_fid": rows[0].fid},
    )  # fmt: skip
    landscape = None
    curve_figs: list[tuple[int, Path]] = []
    if finals:
        landscape = landscape_png(target, finals, args.figures / "energy_landscape.png")
        for budget, curves in curves_by_budget.items():
            png = "fid_curves.png" if not several else f"fid_curves_budget{budget}.png"
            curve_figs.append((budget, curves_png(
                curves, rows[0].fid, args.figures / png,
                f"{args.prefix}: FID of all {args.n_chains} chains' images vs budget {budget} "
                f"(mean over seeds {', '.join(map(str, args.seeds))}, band min..max)",
            )))  # fmt: skip
    table = render_table(rows, args.seeds, ref)
    body = [
        f"Target (`{args.prefix}`): " + render_diagnostics(diagnostics) + ".\n",
        table,
        f"Seeds {', '.join(map(str, args.seeds))} (mean ± sd); {args.n_chains} chains "
        f"per run, FID/IS of their images at the last draw (the endpoint: the whole budget) "
        f"against {metric.scorer.n_real} test images; feature network: {extractor}. Budget "
        f"{' and '.join(map(str, args.budget))} target evaluations per chain, "
        f"{args.warmup_fraction:.0%} of it in `fit`"
        + (f"; GAN training {gan_s / 60:.1f} min" if gan_s is not None else "")
        + f". The tilt is β d(G(z)) with β = {getattr(target, 'beta', 1.0):g}; "
        f"E_π_β[tilt] = {ref:.3f} is its importance-weighted mean from "
        f"{reference['n']} prior draws (importance ESS {reference['importance_ess_fraction']:.2g} n"
        f", about {reference['importance_ess_fraction'] * reference['n']:.0f} effective draws; "
        "biased low when that is small), so the last column is a distance to π_β that does "
        "not depend on FID: near 0 at π_β, negative short of it."
        + (
            f" {kept} of the {len(tasks)} runs were made by an earlier call of this command, "
            "kept by `--resume` (the wall time below does not include them; the table's wall "
            "column does).\n"
            if kept
            else "\n"
        ),
        stamp.footer().strip() + "\n",
    ]
    for budget, fig in curve_figs:
        body.append(
            f"FID against target evaluations per chain (budget {budget}): "
            f"![FID curves, budget {budget}]({fig.as_posix()})\n"
        )
    figs = [f"![{LABELS[m]}]({(args.figures / f'{m}.png').as_posix()})" for m in finals]
    if figs:
        body.append(
            "Trajectories (rows: chains of seed "
            f"{args.seeds[0]}; columns: draws of `sample`, left to right):\n\n"
            + "\n".join(f"{LABELS[m]}: {f}  " for m, f in zip(finals, figs, strict=True))
            + "\n"
        )
    if landscape is not None:
        body.append(f"Energy landscape: ![energy landscape]({landscape.as_posix()})\n")
    section = "\n".join(body)
    save_text(args.out / "table.md", section)
    readme = ROOT / args.readme
    if readme.is_file() and f"<!-- {args.prefix}-table:start -->" in readme.read_text():
        # the page's image links are relative to the page (docs/gans.md -> fashion/<prefix>/)
        rel = Path(os.path.relpath(ROOT / args.figures, readme.parent)).as_posix()
        page = section.replace(f"]({args.figures.as_posix()}/", f"]({rel}/")
        save_text(readme, replace_block(readme.read_text(), f"{args.prefix}-table", page))
        print(f"README section rewritten ({readme})")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
