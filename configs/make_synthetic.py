"""Writes configs/synthetic/<experiment>/<method>.yaml: the paper's synthetic section.

Samsonov et al. 2022, Sec. 4.1: i-SIR / Ex2MCMC / FlEx2MCMC against MALA and HMC
on the 25-mode grid mixture (2-D), Neal's funnel (d = 10..100), the banana
(d = 20..100) and a bimodal Gaussian mixture in high dimension, with the
paper's settings: N = 200 particles, 3 MALA steps (funnel) / 5 (banana),
proposal scale 3 (funnel) / 5 (banana), RealNVP with 4 blocks, lr 1e-3. The
gradient kernels use a diagonal mass matrix adapted in the warm-up (Stan's windows;
the GAN configs keep the paper's identity).

Regenerate with ``python configs/make_synthetic.py`` (a test checks the files
are up to date). Run one with::

    lightning-ex2 fit --config configs/synthetic/funnel_d50/flex2mcmc.yaml
    lightning-ex2 sample --config configs/synthetic/funnel_d50/flex2mcmc.yaml \\
        --ckpt_path logs/synthetic/funnel_d50/flex2mcmc/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent / "synthetic"

# experiment -> (target, dim, proposal scale, MALA steps, initial step size, init)
EXPERIMENTS: dict[str, dict] = {}
EXPERIMENTS["mixture25"] = dict(
    target={"class_path": "lightning_ex2.targets.GridMixture", "init_args": {"k": 5}},
    dim=2,
    scale=8.0,
    n_local=3,
    step=0.5,
    n_particles=50,
    init={"init_loc": [-10.0, -10.0], "init_scale": 0.5},  # all chains in one corner mode
)
for d in (10, 20, 50, 100):
    EXPERIMENTS[f"funnel_d{d}"] = dict(
        target={"class_path": "lightning_ex2.targets.Funnel", "init_args": {"dim": d}},
        dim=d,
        scale=3.0,
        n_local=3,
        step=0.01,
        n_particles=200,
        init={},
    )
for d in (20, 50, 100):
    EXPERIMENTS[f"banana_d{d}"] = dict(
        target={"class_path": "lightning_ex2.targets.Banana", "init_args": {"dim": d}},
        dim=d,
        scale=5.0,
        n_local=5,
        step=0.01,
        n_particles=200,
        init={},
    )
for d in (20, 50, 100):
    EXPERIMENTS[f"bimodal_d{d}"] = dict(
        target={
            "class_path": "lightning_ex2.targets.SymmetricMixture",
            "init_args": {"dim": d, "n_modes": 2, "distance": 8.0, "scale": 1.0},
        },
        dim=d,
        scale=3.0,
        n_local=3,
        step=0.1,
        n_particles=200,
        init={},
    )

METHODS = ("mala", "hmc", "isir", "ex2mcmc", "ex2mcmc_hmc", "flex2mcmc")


def kernel(method: str, e: dict) -> dict:
    gaussian = {
        "class_path": "lightning_ex2.proposals.GaussianProposal",
        "init_args": {"dim": e["dim"], "scale": e["scale"]},
    }
    flow = {
        "class_path": "lightning_ex2.proposals.FlowProposal",
        "init_args": {
            "dim": e["dim"],
            "flow": "realnvp",
            "n_blocks": 4,
            "hidden_features": 64,
            "scale": e["scale"],
        },
    }
    if method == "mala":
        return {
            "class_path": "lightning_ex2.kernels.MALA",
            "init_args": {
                "step_size": e["step"],
                "target_accept": 0.574,
                "mass_matrix": "diagonal",
            },
        }
    if method == "hmc":
        return {
            "class_path": "lightning_ex2.kernels.HMC",
            "init_args": {
                "step_size": e["step"],
                "n_leapfrog": 10,
                "target_accept": 0.65,
                "jitter": 0.2,
                "mass_matrix": "diagonal",
            },
        }
    if method == "isir":
        return {
            "class_path": "lightning_ex2.kernels.ISIR",
            "init_args": {"proposal": gaussian, "n_particles": e["n_particles"]},
        }
    if method == "ex2mcmc_hmc":  # the general form: any local kernel
        return {
            "class_path": "lightning_ex2.kernels.Ex2MCMC",
            "init_args": {
                "proposal": gaussian,
                "n_particles": e["n_particles"],
                "local_kernel": kernel("hmc", e),
                "n_local_steps": 1,
            },
        }
    return {
        "class_path": "lightning_ex2.kernels.Ex2MCMC",
        "init_args": {
            "proposal": flow if method == "flex2mcmc" else gaussian,
            "n_particles": e["n_particles"],
            "step_size": e["step"],
            "n_local_steps": e["n_local"],
            "target_accept": 0.574,
            "mass_matrix": "diagonal",
        },
    }


def config(name: str, method: str, e: dict) -> dict:
    model_args = {"target": e["target"], "kernel": kernel(method, e), "seed": 0}
    module = "lightning_ex2.lightning.MCMCSampler"
    steps = 200  # warm-up: step-size adaptation
    if method == "flex2mcmc":
        module = "lightning_ex2.lightning.FlEx2MCMC"
        model_args.update(
            forward_kl_weight=1.0,
            backward_kl_weight=0.0,
            optimizer={"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}},
        )
        steps = 1000  # warm-up + flow training
    return {
        "seed_everything": 0,
        "trainer": {
            "max_steps": steps,
            "accelerator": "auto",
            "devices": 1,
            "logger": {
                "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                "init_args": {"save_dir": "logs", "name": f"synthetic/{name}/{method}"},
            },
            "callbacks": [
                {
                    "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                    "init_args": {"save_last": True, "save_top_k": 0, "every_n_train_steps": 100},
                },
                {
                    "class_path": "lightning_ex2.lightning.ChainDiagnostics",
                    "init_args": {"every_n_epochs": 100},
                },
            ],
        },
        "model": {"class_path": module, "init_args": model_args},
        "data": {"n_chains": 100, **e["init"]},
    }


def render(name: str, method: str) -> str:
    head = (
        f"# Generated by configs/make_synthetic.py: {name}, {method}. Edit the generator.\n"
        f"#   lightning-ex2 fit --config configs/synthetic/{name}/{method}.yaml\n"
    )
    return head + yaml.safe_dump(config(name, method, EXPERIMENTS[name]), sort_keys=False)


def main(check: bool = False) -> int:
    stale = []
    for name in EXPERIMENTS:
        for method in METHODS:
            path = HERE / name / f"{method}.yaml"
            text = render(name, method)
            if check:
                if not path.is_file() or path.read_text() != text:
                    stale.append(str(path))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale configs (run python configs/make_synthetic.py):", *stale, sep="\n  ")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
