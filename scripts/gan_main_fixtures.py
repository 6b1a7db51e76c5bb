"""Remake the checkpoints of ``tests/fixtures/gan_main/`` with the current code.

    python scripts/gan_main_fixtures.py

Writes, in ``tests/fixtures/gan_main/``:

* ``generator.pt``/``discriminator.pt``: a ``DigitsGenerator(latent_dim=2, hidden=4)`` and a
  ``DigitsDiscriminator(hidden=4)`` as built after ``torch.manual_seed(0)``, in the format of
  ``GANModule.save_generator_discriminator``;
* ``sampler.ckpt``: ``lightning-ex2 fit --config digits_isir_tiny.yaml`` (two i-SIR steps);
* ``gan_module.ckpt``: one epoch of ``configs/gan/digits_gan_train.yaml`` with ``hidden: 4``.

``samples_main.npz`` (5 draws sampled from ``sampler.ckpt``) and ``classifier_golden.pt`` (the
shipped classifiers' outputs on fixed inputs) are records of an earlier version (main
f9c88f2), which the tests compare the current code against; this script leaves them alone.
Each run gives the same tensors as that version's run (same seeds).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "fixtures" / "gan_main"

GAN_CONFIG = """\
seed_everything: 0
trainer: {max_epochs: 1, accelerator: cpu, devices: 1, logger: false, enable_checkpointing: true}
model:
  class_path: lightning_ex2.gan.GANModule
  init_args:
    generator:
      class_path: lightning_ex2.gan.DigitsGenerator
      init_args: {latent_dim: 2, hidden: 4}
    discriminator:
      class_path: lightning_ex2.gan.DigitsDiscriminator
      init_args: {hidden: 4}
    loss: ns
    lr_g: 0.001
    lr_d: 0.001
    n_critic: 1
    n_grid_images: 1
    image_every_n_epochs: 0
    export_dir: null
    seed: 0
data:
  class_path: lightning_ex2.gan.DigitsDataModule
  init_args: {batch_size: 64, val_fraction: 0.1, seed: 0}
"""


def _fit(config: Path, root: Path) -> Path:
    """``lightning-ex2 fit`` of ``config`` with its checkpoints under ``root``; the last one."""
    subprocess.run(
        [sys.executable, "-m", "lightning_ex2.lightning.cli", "fit", "--config", str(config),
         "--trainer.enable_checkpointing", "true", "--trainer.default_root_dir", str(root)],
        cwd=ROOT, check=True,
    )  # fmt: skip
    return root / "checkpoints" / "last.ckpt"


def main() -> None:
    from lightning_ex2.gan import DigitsDiscriminator, DigitsGenerator, GANModule
    from lightning_ex2.trust import load_torch

    torch.manual_seed(0)
    gan = GANModule(DigitsGenerator(latent_dim=2, hidden=4), DigitsDiscriminator(hidden=4))
    gan.save_generator_discriminator(HERE)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(
            _fit(HERE / "digits_isir_tiny.yaml", Path(tmp) / "isir"), HERE / "sampler.ckpt"
        )
        config = Path(tmp) / "gan.yaml"
        config.write_text(GAN_CONFIG)
        shutil.copyfile(_fit(config, Path(tmp) / "gan"), HERE / "gan_module.ckpt")
    for name in ("generator.pt", "discriminator.pt", "sampler.ckpt", "gan_module.ckpt"):
        load_torch(HERE / name)  # every file loads with weights_only=True
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
