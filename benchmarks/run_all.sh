#!/usr/bin/env bash
# Regenerate every table and benchmarks/RESULTS.md (one after the other: they time things).
#   bash benchmarks/run_all.sh          (~35 min on 2 quiet cores; sets up the benchmark venvs first)
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/setup_envs.sh
PY=benchmarks/.venv-ref/bin/python   # holds our package, its deps and the reference
mkdir -p benchmarks/out
before=$(cut -d' ' -f1-3 /proc/loadavg)
$PY benchmarks/floor.py "$@"
$PY benchmarks/targets.py
$PY benchmarks/reference.py
$PY benchmarks/reference.py --threads 2
$PY benchmarks/quality.py
after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "This run ($(date -u '+%Y-%m-%d %H:%M UTC')): load average (1/5/15 min) ${before} before, ${after} after." \
  > benchmarks/out/run_note.md
$PY benchmarks/make_results.py
