"""The paper's energy-landscape figure: latent samples of each method over the energy.

For a GAN with a 2-D latent space (the paper's MNIST GAN, or the CPU digits GAN),
one panel per method shows the contours of E(z) = -log pi(z) and the final
latents of that method's chains (from ``lightning-ex2 sample`` outputs).

    python scripts/digits_table.py                 # makes logs/tables/digits/<method>/seed<k>/
    python scripts/energy_landscape.py --gan digits
    python scripts/energy_landscape.py --gan mnist --samples logs/tables/mnist

Reads ``<samples>/<method>/samples.npz``, or the first ``<samples>/<method>/seed<k>/``
(the digits table's layout). Writes ``<samples>/energy_landscape.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lightning_ex2.lightning.cli import build_cli
from lightning_ex2.output.figures import energy_landscape_figure, save_figure

METHODS = ("ula", "mala", "isir", "ex2mcmc", "flex2mcmc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gan", default="digits", choices=["digits", "mnist"])
    parser.add_argument(
        "--samples",
        type=Path,
        default=None,
        help="folder with <method>/samples.npz or <method>/seed<k>/samples.npz "
        "(default logs/tables/<gan>)",
    )
    args = parser.parse_args()
    folder = args.samples or Path("logs/tables") / args.gan
    target = build_cli(["--config", f"configs/gan/{args.gan}_isir.yaml"], run=False).model.target
    samples = {"prior": target.prior_sample(1000).numpy()}
    for method in METHODS:
        seeds = sorted((folder / method).glob("seed*/samples.npz"))
        path = folder / method / "samples.npz"
        path = path if path.is_file() or not seeds else seeds[0]
        if path.is_file():
            samples[method] = np.load(path)["samples"][:, -1]  # the chains' final latents
    if len(samples) == 1:
        raise SystemExit(f"no <method>/samples.npz under {folder}: run the sampling first")
    fig = energy_landscape_figure(
        target,
        samples,
        extent=(-3.5, 3.5, -3.5, 3.5),
        title=f"{args.gan} GAN: latent samples over -log pi(z)",
    )
    out = save_figure(fig, folder / "energy_landscape.png")
    print(f"wrote {out or folder / 'energy_landscape.png'}")


if __name__ == "__main__":
    main()
