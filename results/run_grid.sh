#!/usr/bin/env bash
# The CPU-scale reproduction of the paper's Mujoco study (docs/results.md): Hopper-v4 and HalfCheetah-v4 teachers
# of seeds 1 and 2; PPD, student-distill and teacher-distill onto smaller, same and larger students from each;
# sigma = 0.05 imperfect teachers onto larger students; a PPD lambda sweep (0.5, 1, 2, 5) on HalfCheetah-v4.
# Two streams (one per env) run side by side on a 2-core machine, one torch thread each; the whole grid took
# 98 minutes there. Raw runs go to runs/grid/ (not committed); the report step extracts what
# docs/results.md needs into results/runs/ (eval.json + curves.csv) and writes the tables and figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
GRID=${GRID:-runs/grid}
# The published grid trained on gymnasium's SyncVectorEnv (it ran before envpool became the scripts' default);
# BACKEND="" trains on envpool's v4 tasks instead (evaluation is on gymnasium's either way).
BACKEND=${BACKEND---env-backend gymnasium}
export OMP_NUM_THREADS=1  # two processes on two cores: one torch thread each (oversubscription is ~10x slower)

# Seed 1: the shipped teachers (teachers/train.sh, 2M steps); seed 2 is trained here with the same budget.
mkdir -p "$GRID/teachers"
for env in Hopper-v4 HalfCheetah-v4; do
  cp "teachers/${env}__1.pt" "teachers/${env}__1.json" "$GRID/teachers/"
  mkdir -p "$GRID/runs/${env}__teacher__1"
  cp "teachers/${env}__1.json" "$GRID/runs/${env}__teacher__1/eval.json"
done

grid=(--suites mujoco --seeds 1 2 --workers 1 --python "$PY"
      --teachers-dir "$GRID/teachers" --runs-dir "$GRID/runs" --logs-dir "$GRID/logs"
      --imperfect-envs Hopper-v4 HalfCheetah-v4 --lambda-envs HalfCheetah-v4
      --teacher-flags="--total-timesteps 2000000 $BACKEND"
      --distill-flags="--total-timesteps 200000 --eval-every 20000 --eval-every-episodes 5 $BACKEND")
status=0
"$PY" tools/sweep.py "${grid[@]}" --envs Hopper-v4 > "$GRID/sweep_Hopper-v4.log" 2>&1 &
"$PY" tools/sweep.py "${grid[@]}" --envs HalfCheetah-v4 > "$GRID/sweep_HalfCheetah-v4.log" 2>&1 &
wait -n || status=1
wait -n || status=1

"$PY" tools/report.py --runs-dir "$GRID/runs" --extract-to results/runs --out-dir results/report
exit $status
