#!/usr/bin/env bash
# Fetch torch-mimicry 0.1.16 (the library that trained the paper's CIFAR-10 GANs) for
# tests/gan/test_mimicry.py, which compares our 32x32 DCGAN/SNGAN networks with mimicry's own
# by execution. Only its `nets`/`modules` are imported (the package __init__ pulls in
# torchvision/tensorflow training code), so nothing is installed: the sdist is unpacked
# into third_party/ (git-ignored) and the test finds it there.
#
#   bash scripts/setup_mimicry.sh            # then: .venv/bin/python -m pytest -q tests/gan/test_mimicry.py
#   LX_MIMICRY_PATH=/elsewhere/torch_mimicry-0.1.16 pytest tests/gan/test_mimicry.py   # another copy
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.1.16
DEST=third_party
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ -f "$DEST/torch_mimicry-$VERSION/torch_mimicry/nets/__init__.py" ]; then
    echo "torch-mimicry $VERSION already in $DEST/torch_mimicry-$VERSION"
    exit 0
fi
mkdir -p "$DEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-deps: its requirements (tensorflow, torchvision, ...) are not needed for nets/modules.
"$PY" -m pip download --quiet --no-deps --no-binary :all: "torch-mimicry==$VERSION" -d "$tmp"
tar -xzf "$tmp/torch_mimicry-$VERSION.tar.gz" -C "$tmp"
rm -rf "$DEST/torch_mimicry-$VERSION"
mv "$tmp/torch_mimicry-$VERSION" "$DEST/torch_mimicry-$VERSION"  # appears whole or not at all
echo "torch-mimicry $VERSION unpacked into $DEST/torch_mimicry-$VERSION"
