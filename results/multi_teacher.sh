#!/usr/bin/env bash
# Issue #39's study: one student for coinrun, jumper, miner and ninja (multi_teacher_procgen.py) from seed s's four
# teachers of issue #38 (teachers/{game}__{s}.pt), the teachers' own network as the student (--student same), 8M
# steps (2M per game, the single-game students' budget per game), --eval-every 400000; seeds 1 and 2 of PPD,
# student-distill, teacher-distill and multi-task PPO, and PPD with --lambda-fade on seed 1: 9 runs.
#
# It runs in pieces, as results/run_grid.sh: each call works for at most PIECE_MINUTES (default 120), SIGTERMs the
# running run at the end (its checkpoint resumes on the next call) and starts nothing new. A finished run is
# collected at once by results/collect_run.sh (eval.json and curves.csv to results/runs/, the report regenerated,
# committed; COMMIT=0: copy only); a run whose data is in results/runs/ is skipped, and a seed whose four teachers
# are not all committed waits. A run is longer than a session, so each piece carries the unfinished run through
# git to the next session, maybe on a new machine (results/carry.sh; CARRY=0: not; default: as COMMIT).
# Exit 0: all runs done; 3: runs left for the next call.
#
#     bash results/multi_teacher.sh                      # one piece of at most two hours
#     SEEDS=1 PIECE_MINUTES=60 bash results/multi_teacher.sh
#     FLAGS="--total-timesteps 4608 --eval-episodes 2" COMMIT=0 GRID=/tmp/try bash results/multi_teacher.sh  # a try
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
GRID=${GRID:-runs/grid_multi}
REPO=${REPO:-.}
COMMIT=${COMMIT:-1}
SEEDS=${SEEDS:-1 2}
read -ra extra <<< "${FLAGS:-}"  # extra flags for every new run (a tiny budget to try this script)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one torch thread: the other core runs the second stream
CARRY=${CARRY:-$COMMIT}
export PY GRID REPO COMMIT
mkdir -p "$GRID/runs" "$GRID/logs"
[ "$CARRY" = 1 ] && bash results/carry.sh restore
end=$(( $(date +%s) + 60 * ${PIECE_MINUTES:-120} ))
status=0
for seed in $SEEDS; do
  runs=("ppd" "student_distill" "teacher_distill" "ppo")
  [ "$seed" = 1 ] && runs+=("ppd_fade")
  missing=$(for game in coinrun jumper miner ninja; do [ -f "teachers/${game}__${seed}.json" ] || echo -n "$game "; done)
  if [ -n "$missing" ]; then
    echo "skip seed $seed: no teachers/{game}__$seed.json yet for ${missing% } (results/pixels/teacher.sh)"
    status=3
    continue
  fi
  for run in "${runs[@]}"; do
    name="multi__${run}__same__${seed}"
    folder="$GRID/runs/$name"
    [ -f "results/runs/$name/eval.json" ] && { echo "# skip (done): $name"; continue; }
    left=$(( (end - $(date +%s)) / 60 ))
    if [ "$left" -le 0 ]; then status=3; break 2; fi
    if [ -f "$folder/checkpoint.pt" ]; then
      cmd=("$PY" multi_teacher_procgen.py --resume "$folder")
    else
      flags=(--method "${run%_fade}")
      [ "$run" = ppd_fade ] && flags+=(--lambda-fade)
      cmd=("$PY" multi_teacher_procgen.py "${flags[@]}" --student same --seed "$seed" --eval-every 400000
           --run-name "$name" --runs-dir "$GRID/runs" "${extra[@]}")
    fi
    echo "$(date -u +%FT%TZ) ${cmd[*]}" | tee -a "$GRID/logs/$name.log"
    timeout --signal=TERM --kill-after=120 "${left}m" "${cmd[@]}" >> "$GRID/logs/$name.log" 2>&1
    code=$?
    if [ "$code" -ne 0 ] || [ ! -f "$folder/eval.json" ]; then
      echo "$name: stopped (exit $code), resumes on the next call; log $GRID/logs/$name.log"
      status=3
      break 2
    fi
    bash results/collect_run.sh "$name" || { status=1; break 2; }
  done
done
[ "$CARRY" = 1 ] && { bash results/carry.sh save || status=1; }
[ "$status" = 0 ] && echo "all multi-teacher runs done"
exit $status
