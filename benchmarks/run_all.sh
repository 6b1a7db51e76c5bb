#!/usr/bin/env bash
# Regenerate every table and benchmarks/RESULTS.md (one after the other: they time things).
#   bash benchmarks/run_all.sh          (~25 min on 2 cores; sets up the benchmark venvs first)
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/setup_envs.sh
PY=benchmarks/.venv-ref/bin/python   # holds our package, its deps and the reference
$PY benchmarks/floor.py "$@"
$PY benchmarks/reference.py
$PY benchmarks/quality.py
$PY benchmarks/make_results.py
