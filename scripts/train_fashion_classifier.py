"""Regenerate the Fashion-MNIST classifier that scores the Fashion GAN (FID/IS in its feature space).

    apt-get install dataset-fashion-mnist                # the IDX files, offline
    python scripts/train_fashion_classifier.py           # -> lightning_ex2/gan/weights/
    python scripts/train_fashion_classifier.py --epochs 1 --out /tmp/clf.pt

Trains on the 60000 training images, reports the accuracy on the 10000 test images
(about 90 % expected). Deterministic: the same seed, torch build and thread count give
the same weights.
"""

from __future__ import annotations

import argparse
import sys
import time

from lightning_ex2.gan import FashionMNISTDataModule
from lightning_ex2.gan.classifier import classifier_weights
from lightning_ex2.gan.classifier_training import as_float_images, train_fashion_classifier
from lightning_ex2.gan.data import FASHION_MNIST_DIR

FASHION_WEIGHTS = classifier_weights("fashion")


def load_split(data_dir: str, split: str):  # type: ignore[no-untyped-def]
    """``(images [n, 1, 28, 28] in [-1, 1], labels int64 [n])`` of a split, in file order."""
    from lightning_ex2.gan.data import read_idx_images

    dm = FashionMNISTDataModule(data_dir=data_dir, split=split)
    return as_float_images(read_idx_images(dm.idx_file("images"))), dm.labels()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=FASHION_MNIST_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default=str(FASHION_WEIGHTS), help="output .pt file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (determinism)")
    parser.add_argument("--min_accuracy", type=float, default=0.85)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    x_tr, y_tr = load_split(args.data_dir, "train")
    x_te, y_te = load_split(args.data_dir, "test")
    _, meta = train_fashion_classifier(
        x_tr,
        y_tr,
        x_te,
        y_te,
        seed=args.seed,
        epochs=args.epochs,
        num_threads=args.threads,
        out_path=args.out,
        verbose=not args.quiet,
    )
    print(
        f"test accuracy {meta['test_accuracy']:.4f} on {meta['n_test']} Fashion-MNIST test "
        f"images ({time.perf_counter() - start:.0f} s); weights written to {args.out}"
    )
    return 0 if meta["test_accuracy"] >= args.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
