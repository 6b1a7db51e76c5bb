#!/usr/bin/env bash
# Create the two benchmark-only virtual environments (idempotent).
#
#   benchmarks/.venv-ref   torch==2.13.0 (CPU) + ex2mcmc==0.0.4, the reference
#                          implementation, with a stand-in `torchvision` module
#                          (ex2mcmc imports it at module level; no working CPU build
#                          exists beside torch 2.13 here). Also our package (editable,
#                          no deps beyond what it needs) so one process runs both.
#   benchmarks/.venv-nuts  jax + numpyro (CPU) for the NUTS baseline.
#
# Nothing here touches the project venv (.venv). Usage:  bash benchmarks/setup_envs.sh [ref|nuts]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want=${1:-all}

if [[ $want == all || $want == ref ]]; then
  V=benchmarks/.venv-ref
  if [[ ! -f $V/.ok ]]; then
    test -x $V/bin/python || $PY -m venv $V
    $V/bin/pip install --quiet --upgrade pip
    # torch pinned first: the CPU wheel lies on disk; unpinned would fetch CUDA builds.
    $V/bin/pip install --quiet "torch==2.13.0"
    # our package with its own dependencies (none of them pulls torchvision) ...
    $V/bin/pip install --quiet "torch==2.13.0" -e .
    # ... then the reference without its declared deps (torchvision, jax, gdown, ...)
    # and only what its sampler modules import.
    $V/bin/pip install --quiet --no-deps "ex2mcmc==0.0.4"
    $V/bin/pip install --quiet "torch==2.13.0" pyro-ppl easydict pandas py-spy
    # stand-in torchvision: ex2mcmc imports it only for GAN utilities we do not use.
    SP=$($V/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir -p "$SP/torchvision"
    cat > "$SP/torchvision/__init__.py" <<'PYEOF'
"""Benchmark-only stand-in for torchvision. ex2mcmc==0.0.4 imports it at module
level for its GAN utilities, which the benchmarks never use; no working CPU build
of torchvision exists beside torch 2.13 here. Lives only in benchmarks/.venv-ref."""
import types as _types

__version__ = "0.0.0+standin"


class _Dummy:
    def __init__(self, *args, **kwargs):
        pass


def _module(name):
    m = _types.ModuleType(name)
    m.__getattr__ = lambda attr: type(attr, (_Dummy,), {})
    return m


def __getattr__(name):
    return _module(f"torchvision.{name}")
PYEOF
    rm -rf "$SP/torchvision/transforms" "$SP/torchvision/datasets" "$SP/torchvision/utils" "$SP/torchvision/models"
    touch $V/.ok
  fi
  echo "ok: $V"
fi

if [[ $want == all || $want == nuts ]]; then
  V=benchmarks/.venv-nuts
  if [[ ! -f $V/.ok ]]; then
    test -x $V/bin/python || $PY -m venv $V
    $V/bin/pip install --quiet --upgrade pip
    $V/bin/pip install --quiet "jax[cpu]" numpyro numpy scipy POT
    touch $V/.ok
  fi
  echo "ok: $V"
fi
