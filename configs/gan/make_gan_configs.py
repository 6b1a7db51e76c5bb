"""Writes configs/gan/<gan>_<method>.yaml: sampling a GAN's latent space (DDLS energy).

Samsonov et al. 2022 (arXiv 2111.02702), Sec. 5, CIFAR-10 table: ULA, MALA, i-SIR,
Ex2MCMC and FlEx2MCMC on log pi(z) = log N(z; 0, I) + d(G(z)) for torch-mimicry's
DCGAN and SNGAN (latent dim 128), with step size 0.01, N = 10 particles, 3 MALA
steps per Ex2MCMC step, 1000 steps, and for FlEx2MCMC a RealNVP proposal
(lr 1e-3, forward/backward KL weights 0.6/0.4) trained during the first 100 steps.
The same methods on the small digits GAN (latent dim 2) and on the Fashion-MNIST DCGAN
(latent dim 64, ``scripts/fashion_table.py``) run on a CPU.

Regenerate with ``python configs/gan/make_gan_configs.py`` (``--check`` only compares).
Run one with::

    lightning-ex2 fit --config configs/gan/digits_ex2mcmc.yaml
    lightning-ex2 sample --config configs/gan/digits_ex2mcmc.yaml \\
        --ckpt_path logs/gan/digits_ex2mcmc/fit/checkpoints/last.ckpt --n_steps 500
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
METHODS = ("ula", "mala", "isir", "ex2mcmc", "flex2mcmc")


def _nets(kind: str, g_args: dict | None = None, d_args: dict | None = None) -> dict:
    suffix = "" if kind in ("Digits", "MNIST", "Fashion") else "32"
    g = {"class_path": f"lightning_ex2.gan.{kind}Generator{suffix}"}
    d = {"class_path": f"lightning_ex2.gan.{kind}Discriminator{suffix}"}
    if g_args:
        g["init_args"] = g_args
    if d_args:
        d["init_args"] = d_args
    return {"generator": g, "discriminator": d}


# gan -> target, latent dim, step size, chains, steps, flow size, comment
GANS: dict[str, dict] = {
    "cifar10_dcgan": dict(
        target={
            **_nets("DCGAN"),
            "batch_size": 1024,
            "generator_ckpt": "/path/to/checkpoints/CIFAR10/DCGAN_NS/netG_100000_steps.pth",
            "discriminator_ckpt": "/path/to/checkpoints/CIFAR10/DCGAN_NS/netD_100000_steps.pth",
        },
        dim=128,
        step=0.01,
        n_chains=10000,  # the reference's 10,000 chains, moved in batches
        chains_per_batch=1000,
        steps=1000,
        flow_hidden=32,  # the reference: RealNVP, hidden 32, 8 couplings, pre-fit to N(0, I)
        flow_blocks=8,
        flow_prefit=1000,
        local_steps=5,  # the reference's Ex2MCMC: 5 MALA steps per global step
        mala_steps_per_iteration=5,  # and MALA: 5 steps per iteration (sample --n_steps 5000)
        accelerator="auto",
        metrics={
            "feature_extractor": "inception",
            "feature_extractor_weights_path": "/path/to/inception-2015-12-05.pt",
            "metrics": ["fid", "is"],
            "n_real": 10000,
            "real_data": {
                "class_path": "lightning_ex2.gan.CIFAR10DataModule",
                "init_args": {"data_dir": "/path/to/cifar-10-batches-py"},
            },
        },
        note=(
            "# Needs the paper's torch-mimicry DCGAN checkpoints (DCGAN_NS/netG_100000_steps.pth,\n"
            "# netD_100000_steps.pth): set generator_ckpt / discriminator_ckpt below. A GPU.\n"
        ),
    ),
    "cifar10_sngan": dict(
        target={
            **_nets("SNGAN"),
            "batch_size": 1024,
            "generator_ckpt": "/path/to/checkpoints/CIFAR10/SNGAN_Hinge/netG.pth",
            "discriminator_ckpt": "/path/to/checkpoints/CIFAR10/SNGAN_Hinge/netD.pth",
        },
        dim=128,
        step=0.01,
        n_chains=10000,  # the reference's 10,000 chains, moved in batches
        chains_per_batch=1000,
        steps=1000,
        flow_hidden=32,  # the reference: RealNVP, hidden 32, 8 couplings, pre-fit to N(0, I)
        flow_blocks=8,
        flow_prefit=1000,
        local_steps=5,  # the reference's Ex2MCMC: 5 MALA steps per global step
        mala_steps_per_iteration=5,  # and MALA: 5 steps per iteration (sample --n_steps 5000)
        accelerator="auto",
        metrics={
            "feature_extractor": "inception",
            "feature_extractor_weights_path": "/path/to/inception-2015-12-05.pt",
            "metrics": ["fid", "is"],
            "n_real": 10000,
            "real_data": {
                "class_path": "lightning_ex2.gan.CIFAR10DataModule",
                "init_args": {"data_dir": "/path/to/cifar-10-batches-py"},
            },
        },
        note=(
            "# Needs the paper's torch-mimicry SNGAN checkpoints (SNGAN_Hinge/netG.pth, netD.pth):\n"
            "# set generator_ckpt / discriminator_ckpt below. A GPU.\n"
        ),
    ),
    "mnist": dict(
        target={
            **_nets("MNIST", {"latent_dim": 2}),
            "generator_ckpt": "logs/gan/mnist_gan/generator.pt",
            "discriminator_ckpt": "logs/gan/mnist_gan/discriminator.pt",
        },
        dim=2,
        step=0.05,
        n_chains=1000,
        steps=300,
        flow_hidden=32,
        accelerator="auto",
        metrics=None,  # the paper shows the energy landscape here, not FID
        note=(
            "# The paper's MNIST experiment (2-D latent). First train the MNIST GAN (needs the\n"
            "# MNIST IDX files): lightning-ex2 fit --config configs/gan/mnist_gan_train.yaml\n"
            "# Then: python scripts/energy_landscape.py --gan mnist\n"
        ),
    ),
    "fashion": dict(
        target={
            **_nets("Fashion", {"latent_dim": 64, "ngf": 32}, {"ndf": 32}),
            "batch_size": 10000,
            "generator_ckpt": "lightning_ex2/gan/weights/fashion_gan_generator.pt",
            "discriminator_ckpt": "lightning_ex2/gan/weights/fashion_gan_discriminator.pt",
            "beta": 1.0,  # the logit scale (inverse temperature of the tilt): the DDLS target
        },
        dim=64,
        step=0.01,
        n_chains=1000,
        steps=100,
        flow_hidden=128,
        accelerator="cpu",
        metrics_every=0,  # FID/IS only at the end of `sample` (scripts/fashion_table.py)
        metrics={
            # the shipped FashionClassifier: 64 penultimate features (FID), 10 logits (IS)
            "feature_extractor": {
                "class_path": "lightning_ex2.gan.ClassifierFeatures",
                "init_args": {"weights": "fashion"},
            },
            "logits_extractor": {
                "class_path": "lightning_ex2.gan.ClassifierLogits",
                "init_args": {"weights": "fashion"},
            },
            "metrics": ["fid", "is"],
            "n_real": 10000,
            "real_data": {
                "class_path": "lightning_ex2.gan.FashionMNISTDataModule",
                "init_args": {"split": "test"},
            },
        },
        note=(
            "# Fashion-MNIST (apt-get install dataset-fashion-mnist), 64-D latent. Loads the shipped\n"
            "# GAN (lightning_ex2/gan/weights/fashion_gan_*.pt); to use your own, train it with\n"
            "#   lightning-ex2 fit --config configs/gan/fashion_gan_train.yaml\n"
            "# and point generator_ckpt / discriminator_ckpt at logs/gan/fashion_gan/*.pt.\n"
            "# The whole table: python scripts/fashion_table.py\n"
        ),
    ),
    "fashion_calibrated": dict(
        target={
            **_nets("Fashion", {"latent_dim": 64, "ngf": 32}, {"ndf": 32}),
            "batch_size": 10000,
            "generator_ckpt": "lightning_ex2/gan/weights/fashion_gan_generator.pt",
            # written by `lightning-ex2 fit --config configs/gan/fashion_calibrate.yaml`;
            # holds the logistic scale GANLatentTarget applies to the logit
            "discriminator_ckpt": (
                "lightning_ex2/gan/weights/fashion_gan_discriminator_calibrated.pt"
            ),
            "beta": 1.0,
        },
        dim=64,
        step=0.01,
        n_chains=1000,
        steps=100,
        flow_hidden=128,
        flow_prefit=1000,  # the reference pre-fits its RealNVP to N(0, I) for 1000 Adam steps
        accelerator="cpu",
        metrics_every=0,
        extra_methods=("mala_fixed",),
        metrics=None,  # filled below: the same as "fashion"
        note=(
            "# Fashion-MNIST (apt-get install dataset-fashion-mnist), 64-D latent, with the shipped\n"
            "# generator and the CALIBRATED discriminator (lightning_ex2/gan/weights/\n"
            "# fashion_gan_discriminator_calibrated.pt, regenerated by\n"
            "#   lightning-ex2 fit --config configs/gan/fashion_calibrate.yaml\n"
            "# and copied there). The whole table:\n"
            "#   python scripts/fashion_table.py --prefix fashion_calibrated\n"
        ),
    ),
    "digits": dict(
        target={
            **_nets("Digits", {"latent_dim": 2, "hidden": 256}, {"hidden": 256}),
            "generator_ckpt": "lightning_ex2/gan/weights/digits_gan_generator.pt",
            "discriminator_ckpt": "lightning_ex2/gan/weights/digits_gan_discriminator.pt",
        },
        dim=2,
        step=0.05,
        n_chains=1000,
        steps=300,
        flow_hidden=32,
        accelerator="cpu",
        metrics={
            "feature_extractor": "digits",  # the shipped DigitsClassifier (FID: features, IS)
            "metrics": ["fid", "is"],
            "n_real": 1797,  # all of scikit-learn's digits
            "real_data": {"class_path": "lightning_ex2.gan.DigitsDataModule"},
        },
        note=(
            "# CPU demo. Loads the shipped digits GAN (lightning_ex2/gan/weights/digits_gan_*.pt,\n"
            "# trained by configs/gan/digits_gan_train.yaml); to use your own, train it with\n"
            "#   lightning-ex2 fit --config configs/gan/digits_gan_train.yaml\n"
            "# and point generator_ckpt / discriminator_ckpt at logs/gan/digits/*.pt.\n"
            "# The whole table: python scripts/digits_table.py\n"
        ),
    ),
}


GANS["fashion_calibrated"]["metrics"] = GANS["fashion"]["metrics"]
GANS["fashion"]["extra_methods"] = ("mala_fixed",)
# The shipped discriminator's tilt tempered by beta = 4: the rule of docs/gans.md ("the
# smallest beta of the grid in the paper's regime at every seed"), fixed before any run.
GANS["fashion_tempered"] = dict(
    GANS["fashion"],
    target={**GANS["fashion"]["target"], "beta": 4.0},
    flow_prefit=1000,  # the flow starts as the prior proposal (the reference pre-fits too)
    extra_methods=(),
    note=(
        "# Fashion-MNIST (apt-get install dataset-fashion-mnist), 64-D latent, the shipped GAN\n"
        "# with its discriminator's tilt TEMPERED: log pi = log N(z; 0, I) + beta d(G(z)),\n"
        "# beta = 4 by the rule in docs/gans.md (python scripts/beta_grid.py). The table:\n"
        "#   python scripts/fashion_table.py --prefix fashion_tempered --budget 1000 5000\n"
    ),
)


def kernel(method: str, g: dict) -> dict:
    prior = {
        "class_path": "lightning_ex2.proposals.GaussianProposal",
        "init_args": {"dim": g["dim"], "scale": 1.0},
    }
    flow = {
        "class_path": "lightning_ex2.proposals.FlowProposal",
        "init_args": {"dim": g["dim"], "flow": "realnvp", "n_blocks": g.get("flow_blocks", 5),
                      "hidden_features": g["flow_hidden"], "scale": 1.0},
    }  # fmt: skip
    if method == "ula":
        return {"class_path": "lightning_ex2.kernels.ULA", "init_args": {"step_size": g["step"]}}
    # the paper's MALA: one shared step size, identity metric (not MALA's defaults)
    paper = {"per_chain_step_size": False, "mass_matrix": "identity"}
    if method == "mala_fixed":  # target_accept null: the step stays at its initial value
        return {"class_path": "lightning_ex2.kernels.MALA",
                "init_args": {"step_size": g["step"], "target_accept": None, **paper}}  # fmt: skip
    if method == "mala":
        return {"class_path": "lightning_ex2.kernels.MALA",
                "init_args": {"step_size": g["step"], "target_accept": 0.67, **paper}}  # fmt: skip
    if method == "isir":
        return {"class_path": "lightning_ex2.kernels.ISIR",
                "init_args": {"proposal": prior, "n_particles": 10}}  # fmt: skip
    return {
        "class_path": "lightning_ex2.kernels.Ex2MCMC",
        "init_args": {"proposal": flow if method == "flex2mcmc" else prior, "n_particles": 10,
                      "step_size": g["step"], "n_local_steps": g.get("local_steps", 3),
                      "target_accept": 0.67},
    }  # fmt: skip


def config(name: str, method: str, g: dict) -> dict:
    model_args: dict = {
        "target": {"class_path": "lightning_ex2.gan.GANLatentTarget", "init_args": g["target"]},
        "kernel": kernel(method, g),
        "adapt_epochs": 100,  # step-size adaptation, then frozen
        "seed": 0,
    }
    module = "lightning_ex2.lightning.MCMCSampler"
    if method == "flex2mcmc":
        module = "lightning_ex2.lightning.FlEx2MCMC"
        model_args.update(
            forward_kl_weight=0.6, backward_kl_weight=0.4, flow_train_epochs=100,
            optimizer={"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}},
        )  # fmt: skip
        if g.get("flow_prefit"):  # maximum likelihood on N(0, I) draws before the first move
            model_args.update(
                warm_start={"class_path": "lightning_ex2.proposals.GaussianProposal",
                            "init_args": {"dim": g["dim"], "scale": 1.0}},
                warm_start_steps=g["flow_prefit"],
            )  # fmt: skip
    every = max(g["steps"] // 10, 1)
    return {
        "seed_everything": 0,
        "trainer": {
            "max_steps": g["steps"],  # MCMC steps (one sweep over the chains each)
            "accelerator": g["accelerator"],
            "devices": 1,
            "logger": {
                "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                "init_args": {"save_dir": "logs/gan", "name": f"{name}_{method}", "version": "fit"},
            },
            "callbacks": [
                {
                    "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                    "init_args": {"save_last": True, "save_top_k": 0, "every_n_train_steps": every},
                },
                {
                    "class_path": "lightning_ex2.lightning.ChainDiagnostics",
                    "init_args": {"every_n_epochs": every},
                },
                *(
                    [
                        {
                            "class_path": "lightning_ex2.gan.ImageQualityMetrics",
                            "init_args": {
                                **g["metrics"],
                                "every_n_epochs": g.get("metrics_every", every),
                            },
                        }
                    ]
                    if g["metrics"]
                    else []
                ),
                {
                    "class_path": "lightning_ex2.gan.SamplingTrajectory",
                    "init_args": {"n_chains": 8, "every_n_steps": max(every // 3, 1)},
                },
            ],
        },
        "model": {"class_path": module, "init_args": model_args},
        # chains start from the prior N(0, I); moved in blocks of chains_per_batch
        "data": {
            "n_chains": g["n_chains"],
            **({"chains_per_batch": g["chains_per_batch"]} if "chains_per_batch" in g else {}),
        },
    }


def render(name: str, method: str) -> str:
    path = f"configs/gan/{name}_{method}.yaml"
    per_iteration = GANS[name].get("mala_steps_per_iteration", 1) if "mala" in method else 1
    n_steps = 1000 * per_iteration
    head = (
        f"# Generated by configs/gan/make_gan_configs.py: {name}, {method}. Edit the generator.\n"
        + GANS[name]["note"]
        + f"#   lightning-ex2 fit --config {path}\n"
        + f"#   lightning-ex2 sample --config {path} \\\n"
        + f"#     --ckpt_path logs/gan/{name}_{method}/fit/checkpoints/last.ckpt --n_steps {n_steps}\n"
    )
    return head + yaml.safe_dump(config(name, method, GANS[name]), sort_keys=False)


def main(check: bool = False) -> int:
    stale = []
    for name in GANS:
        for method in (*METHODS, *GANS[name].get("extra_methods", ())):
            path = HERE / f"{name}_{method}.yaml"
            text = render(name, method)
            if check:
                if not path.is_file() or path.read_text() != text:
                    stale.append(str(path))
                continue
            path.write_text(text)
    if stale:
        print("stale configs (run python configs/gan/make_gan_configs.py):", *stale, sep="\n  ")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
