#!/usr/bin/env bash
# Called by results/run_grid.sh after each finished run (argument: its name): copy every finished run of $GRID
# to results/runs/ (eval.json, curves.csv), regenerate results/report/ from results/runs/, and commit both
# with any new teacher in teachers/ (COMMIT=0: no commit). Streams side by side take turns (flock), so each
# commit's report is the report of its runs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>"$GRID/.collect.lock"
flock 9
"$PY" tools/report.py --runs-dir "$GRID/runs" --extract-to results/runs --extract-only > /dev/null
"$PY" tools/report.py --runs-dir results/runs --out-dir results/report > /dev/null
# issue #21's pace tables (docs/results.md), from the same runs
"$PY" results/stopgrad/pace.py --out results/stopgrad/pace.md > /dev/null
"$PY" results/stopgrad/pace.py --paired --out results/stopgrad/pace_paired.md > /dev/null
if [ "${COMMIT:-1}" = 1 ]; then
  for try in 1 2 3 4 5; do  # another git command of the same checkout may hold its lock for a moment
    git -C "$REPO" add -- results teachers || { sleep 10; continue; }
    # nothing new: another stream's commit already took these files (a teacher written beside its run)
    git -C "$REPO" diff --cached --quiet -- results teachers && exit 0
    git -C "$REPO" commit -q -m "grid: $1" -- results teachers && exit 0
    sleep 10
  done
  exit 1
fi
