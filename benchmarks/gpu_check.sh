#!/usr/bin/env bash
# The prepared GPU check of issue #40 (benchmarks/gpu_check.py lists its six steps): about 8 minutes on one GPU with
# the CUDA build of torch, its results in one file (default gpu_check.json; the markdown report is printed at the
# end and kept in the file under "report"). Without a GPU every step runs on the CPU with short budgets, as CI does.
#
#     bash benchmarks/gpu_check.sh
#     bash benchmarks/gpu_check.sh --out gpu_check.json --keep-work --work /tmp/gpu_check
set -euo pipefail
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python}" "$(dirname "$0")/gpu_check.py" "$@"  # --out and --work are relative to the current folder
