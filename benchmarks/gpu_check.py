"""One-command GPU check (``make gpu-check``): tests, quick start and GAN throughput on CUDA.

On a machine where torch sees a CUDA device, in about 3-8 minutes:

1. **tests**: the device-parametrised tests (``pytest -m "device and not ddp" tests
   --device cuda``);
2. **quickstart**: ``lightning-ex2 fit`` + ``sample`` of ``configs/quickstart.yaml`` with
   ``--trainer.accelerator gpu`` (outputs under ``benchmarks/out/gpu_quickstart/``);
3. **throughput**: GAN latent sampling, ``GANLatentTarget`` on torch-mimicry's
   DCGAN-32 generator/discriminator with random weights (latent dim 128), MALA,
   i-SIR, Ex2MCMC and FlEx2MCMC (Ex2MCMC with a RealNVP proposal), ``N = 10``
   particles, 256 / 1024 / 4096 chains. Per row: chain-steps/s, the step time over
   the time of exactly its G and D evaluations done as batches (``net ratio``;
   i-SIR goal <= 1.3), peak GPU memory, and the host syncs counted inside the
   timed steps (``torch.cuda.set_sync_debug_mode``; goal 0: one sync per
   reported interval, the one that reads the clock).

Writes ``benchmarks/out/gpu.json`` and ``benchmarks/out/gpu.md``. Without CUDA it
stops at once with one line saying so and exit status 2. ``--device cpu`` runs the
same code on the CPU with small networks (a smoke test of the script, not a GPU
number).

Usage::

    make gpu-check
    python benchmarks/gpu_check.py [--parts tests,quickstart,throughput] [--chains 256,1024,4096]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # common.py beside it
ROOT = HERE.parent
KERNELS = ("MALA", "i-SIR", "Ex2MCMC", "FlEx2MCMC")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run ``cmd`` from the repository root; exit status, seconds and the output's tail."""
    start = time.perf_counter()
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as err:
        rc, out = 124, f"timed out after {timeout:.0f} s\n{err.stdout or ''}"
        out = out if isinstance(out, str) else out.decode(errors="replace")
    return {
        "command": " ".join(cmd),
        "returncode": rc,
        "seconds": round(time.perf_counter() - start, 1),
        "tail": "\n".join(out.strip().splitlines()[-15:]),
    }


# ------------------------------------------------------------------ parts 1 and 2
def run_tests(device: str, timeout: float) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "device and not ddp",
    ]
    res = _run([*cmd, "tests", "--device", device], timeout)
    res["summary"] = res["tail"].splitlines()[-1] if res["tail"] else ""
    return res


def run_quickstart(device: str, out: Path, timeout: float, steps: int | None) -> dict:
    cli = str(Path(sys.executable).with_name("lightning-ex2"))
    cli_cmd = [cli] if Path(cli).exists() else [sys.executable, "-m", "lightning_ex2.lightning.cli"]
    accel = "gpu" if device.startswith("cuda") else "cpu"
    root = out / "gpu_quickstart"
    common = [
        "--config", "configs/quickstart.yaml", f"--trainer.accelerator={accel}",
        f"--trainer.logger.init_args.save_dir={root}",
    ]  # fmt: skip
    fit = [*cli_cmd, "fit", *common]
    if steps is not None:
        fit.append(f"--trainer.max_steps={steps}")
    res_fit = _run(fit, timeout)
    ckpt = root / "quickstart" / "fit" / "checkpoints" / "last.ckpt"
    sample = [
        *cli_cmd, "sample", *common, f"--ckpt_path={ckpt}", f"--output_dir={root / 'sample'}",
        f"--n_steps={steps or 300}",
    ]  # fmt: skip
    res_sample = _run(sample, timeout) if res_fit["returncode"] == 0 else {"skipped": "fit failed"}
    summary = root / "sample" / "summary.json"
    result = {"fit": res_fit, "sample": res_sample, "ok": False}
    if summary.exists():
        result["summary"] = json.loads(summary.read_text())
        result["ok"] = res_fit["returncode"] == 0 and res_sample.get("returncode") == 0
    return result


# ------------------------------------------------------------------ part 3
class Clock:
    """Elapsed seconds of a block of queued work: CUDA events (one host sync, at
    :meth:`stop`) on a GPU, ``perf_counter`` on the CPU."""

    def __init__(self, device) -> None:  # type: ignore[no-untyped-def]
        import torch

        self.cuda = device.type == "cuda"
        if self.cuda:
            self.begin = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        if self.cuda:
            self.begin.record()
        else:
            self.t0 = time.perf_counter()

    def stop(self) -> float:
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            return self.begin.elapsed_time(self.end) / 1e3
        return time.perf_counter() - self.t0


def _count_syncs(device, fn) -> tuple[object, int]:  # type: ignore[no-untyped-def]
    """Run ``fn()`` counting the host syncs torch reports (CUDA only; else 0)."""
    import torch

    if device.type != "cuda":
        return fn(), 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return result, sum("synchroniz" in str(w.message).lower() for w in caught)


def _timed(device, fn, min_seconds: float, max_reps: int) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    """Seconds per call of ``fn`` (queued back to back, one sync at the end), the
    number of calls and the host syncs counted inside them."""
    clock = Clock(device)
    clock.start()
    fn()
    once = max(clock.stop(), 1e-6)
    reps = int(min(max_reps, max(2, min_seconds / once)))

    def loop() -> None:
        for _ in range(reps):
            fn()

    clock.start()
    _, syncs = _count_syncs(device, loop)
    return clock.stop() / reps, reps, syncs


def build_gan(device, small: bool):  # type: ignore[no-untyped-def]
    import torch

    from lightning_ex2.gan import DCGANDiscriminator32, DCGANGenerator32, GANLatentTarget

    torch.manual_seed(0)  # random weights, fixed
    kw_g, kw_d = ({"ngf": 16}, {"ndf": 16}) if small else ({}, {})
    target = GANLatentTarget(DCGANGenerator32(**kw_g), DCGANDiscriminator32(**kw_d))
    return target.to(device)


def build_kernel(name: str, dim: int, n_particles: int, device):  # type: ignore[no-untyped-def]
    from common import FIXED_MALA

    import lightning_ex2 as lx

    h, k = 0.01, 1
    if name == "MALA":
        kernel = lx.MALA(step_size=h, **FIXED_MALA)
    elif name == "i-SIR":
        kernel = lx.ISIR(lx.proposals.GaussianProposal(dim), n_particles)
    elif name == "Ex2MCMC":
        kernel = lx.Ex2MCMC(lx.proposals.GaussianProposal(dim), n_particles, h, n_local_steps=k)
    else:
        flow = lx.proposals.FlowProposal(dim, flow="realnvp", n_blocks=4, hidden_features=256)
        kernel = lx.Ex2MCMC(flow, n_particles, h, n_local_steps=k)
    return kernel.to(device)


def throughput(  # type: ignore[no-untyped-def]
    device, kernels: list[str], chains: list[int], n_particles: int, small: bool, min_seconds: float
) -> list[dict]:
    import torch

    from lightning_ex2.kernels.base import log_prob_and_grad, log_prob_only
    from lightning_ex2.random import make_generator

    target = build_gan(device, small)
    dim = target.dim
    rows = []
    for name in kernels:
        kernel = build_kernel(name, dim, n_particles, device)
        for n_chains in chains:
            g = make_generator(device)
            g.manual_seed(0)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            x0 = torch.randn(n_chains, dim, device=device, generator=g)
            state = kernel.init(x0, target)
            box = [state]

            def step(kernel=kernel, box=box, g=g) -> None:
                box[0] = kernel.step(box[0], target, g)[0]

            step()  # warm-up (cudnn autotuning, allocator)
            sec, reps, syncs = _timed(device, step, min_seconds, 50)
            peak = (
                torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            )
            # exactly the network evaluations of one step, as batches
            x = box[0].x
            fresh = torch.randn(n_chains * (n_particles - 1), dim, device=device, generator=g)
            if name in ("MALA", "i-SIR"):
                n_grad = int(name == "MALA")
            else:  # the gradient at the i-SIR output, then one per MALA step
                n_grad = kernel.n_local_steps + 1
            isir = name != "MALA"

            def nets(x=x, fresh=fresh, n_grad=n_grad, isir=isir) -> None:
                if isir:
                    log_prob_only(target, fresh)
                for _ in range(n_grad):
                    log_prob_and_grad(target, x)

            nets()
            net_sec, _, _ = _timed(device, nets, min_seconds, 50)
            row = {
                "kernel": name,
                "chains": n_chains,
                "particles": n_particles if isir else "-",
                "ms/step": sec * 1e3,
                "chain-steps/s": n_chains / sec,
                "G+D ms": net_sec * 1e3,
                "net ratio": sec / net_sec,
                "peak GiB": peak if peak is not None else "-",
                "steps timed": reps,
                "host syncs/step": syncs / reps,
            }
            rows.append(row)
            print(row, flush=True)
            del state, box, x, fresh
    return rows


def markdown(rows: list[dict], header: str) -> str:
    cols = list(rows[0])

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from lightning_ex2.stamp import Stamp

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (smoke test)")
    p.add_argument("--parts", default="tests,quickstart,throughput")
    p.add_argument("--chains", default="256,1024,4096")
    p.add_argument("--particles", type=int, default=10)
    p.add_argument("--kernels", default=",".join(KERNELS), help="subset of " + ",".join(KERNELS))
    p.add_argument("--min-seconds", type=float, default=1.0, help="timed interval per row")
    p.add_argument(
        "--quickstart-steps",
        type=int,
        default=None,
        help="fit/sample steps (default: the config's)",
    )
    p.add_argument(
        "--small", action="store_true", help="small networks (ngf=ndf=16), for smoke tests"
    )
    p.add_argument("--out", default=str(HERE / "out"))
    args = p.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"gpu-check: no CUDA device visible to torch {torch.__version__} "
            f"(built with CUDA {torch.version.cuda}); nothing was run",
            file=sys.stderr,
        )
        return 2
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    unknown = parts - {"tests", "quickstart", "throughput"}
    if unknown:
        print(f"gpu-check: unknown --parts {sorted(unknown)}", file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report: dict = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda}
    ok = True
    if "tests" in parts:
        report["tests"] = run_tests(args.device, timeout=240)
        ok &= report["tests"]["returncode"] == 0
        print(f"tests: {report['tests']['summary']}", flush=True)
    if "quickstart" in parts:
        report["quickstart"] = run_quickstart(args.device, out, 150, args.quickstart_steps)
        ok &= report["quickstart"]["ok"]
        print(
            f"quickstart fit + sample: {'ok' if report['quickstart']['ok'] else 'FAILED'}",
            flush=True,
        )
    md = ""
    if "throughput" in parts:
        chains = [int(c) for c in args.chains.split(",")]
        kernels = args.kernels.split(",")
        if set(kernels) - set(KERNELS):
            print(f"gpu-check: --kernels must be among {','.join(KERNELS)}", file=sys.stderr)
            return 2
        rows = throughput(device, kernels, chains, args.particles, args.small, args.min_seconds)
        report["throughput"] = rows
        header = (
            f"GAN latent sampling (DCGAN-32{' small' if args.small else ''}, random weights, "
            f"latent dim 128, N={args.particles}, float32) on {name}; torch {torch.__version__}"
        )
        md = markdown(rows, header)
        print(md, flush=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["ok"] = bool(ok)
    _write_atomic(out / "gpu.json", json.dumps(report, indent=2, default=str) + "\n")
    if md:
        _write_atomic(out / "gpu.md", md + stamp.footer())
    print(
        f"gpu-check: {'ok' if ok else 'FAILED'} in {report['seconds']:.0f} s; wrote {out / 'gpu.json'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
