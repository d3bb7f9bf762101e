#!/usr/bin/env bash
# The pixel teachers trained in pieces on this CPU machine: Pong (issue #20 part 3, seed 1, shipped as
# teachers/Pong-v5__1.pt), coinrun (issue #20 part 4, seeds 1 and 2), and jumper, miner and ninja (issue #38
# part 1, seeds 1 and 2: the paper's other three Procgen games, coinrun's recipe). The paper's settings (A.2, Table 3; the teacher
# scripts' defaults, including one CNN trunk for actor and critic, --shared-trunk: with a trunk each the first
# Pong run's actor trunk died, docs/teachers.md) except two: the network, a Nature-CNN {32, 64, 64} with a 512-unit
# layer instead of the paper's IMPALA-CNN {16, 32, 32}/256, which costs several times more per sample here
# (docs/throughput.md), and the budget: 5M steps (the paper: Pong 10M, coinrun 30M), to be extended with STEPS
# if a teacher is not good enough (the learning rate is constant, so a 5M-step teacher is the first half of a
# 10M-step run: extending it loses nothing).
#
# Each call trains GAME's seed-SEED teacher for at most PIECE_MINUTES (default 120), then SIGTERMs the run, which
# writes its checkpoint and stops; the next call resumes it (runs/pixels/ is not committed). A teacher that needs
# more than one session (jumper, miner and ninja: about 3.2 hours at 430 steps/s beside a second stream) carries its
# resumable checkpoint (7.3 MB for the Procgen Nature-CNN: weights, Adam state, RNG and reward statistics) to the
# next session, maybe on a new machine, through git: CARRY=1 commits it after the piece as
# results/pixels/{env_id}__{seed}_checkpoint.pt, a later call on a machine without the run folder resumes from it,
# and the finished run's piece removes it from the tree. After each piece the log (results/pixels/{env_id}__{seed}_teacher.log, appended) and the
# training curve (results/pixels/{env_id}__{seed}_teacher_curve.csv: the return of every episode) are committed
# (COMMIT=0: write only), and, once the run has finished, the teacher (teachers/{env_id}__{seed}.pt, policy only)
# with its .json (its final evaluation). Exit 0: finished; 3: work left for the next call.
#
#     GAME=Pong SEED=1 bash results/pixels/teacher.sh
#     GAME=coinrun SEED=2 PIECE_MINUTES=30 bash results/pixels/teacher.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
GAME=${GAME:-Pong}
SEED=${SEED:-1}
COMMIT=${COMMIT:-1}
case $GAME in
  Pong) env_id=Pong-v5 script=ppo_teacher_atari.py budget=5000000 ;;
  coinrun|jumper|miner|ninja) env_id=$GAME script=ppo_teacher_procgen.py budget=5000000 ;;
  *) echo "teacher.sh: GAME must be Pong, coinrun, jumper, miner or ninja, got '$GAME'" >&2; exit 2 ;;
esac
STEPS=${STEPS:-$budget}  # the run's budget, new or resumed (a larger one extends it; a smaller one to try the script)
name="${env_id}__${SEED}"
RUN=runs/pixels/${env_id}__teacher__${SEED}
log=results/pixels/${name}_teacher.log
curve=results/pixels/${name}_teacher_curve.csv
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one torch thread: the other core runs the second stream
if [ -f "teachers/$name.json" ] && [ ! -f "$RUN/checkpoint.pt" ]; then
  echo "teachers/$name.json exists: $name is trained (extend it from its run folder with --resume and --total-timesteps)"
  exit 0
fi
carried=results/pixels/${name}_checkpoint.pt
if [ ! -f "$RUN/checkpoint.pt" ] && [ -f "$carried" ]; then
  mkdir -p "$RUN" && cp "$carried" "$RUN/checkpoint.pt"
  echo "resuming $name from the carried checkpoint $carried" | tee -a "$log"
fi
if [ -f "$RUN/checkpoint.pt" ]; then
  cmd=("$PY" "$script" --resume "$RUN" --total-timesteps "$STEPS")
else
  cmd=("$PY" "$script" --env-id "$GAME" --seed "$SEED" --arch nature --channels 32 64 64 --fc-size 512
       --total-timesteps "$STEPS" --run-name "${env_id}__teacher__${SEED}" --runs-dir runs/pixels)
fi
timeout --signal=TERM --kill-after=120 "${PIECE_MINUTES:-120}m" "${cmd[@]}" >> "$log" 2>&1
status=$?
"$PY" results/episode_curve.py "$RUN" "$curve"
paths=("$log" "$curve")
finished=0  # this piece completed the run (a run extended past its first finish has an eval.json already)
[ "$status" -eq 0 ] && [ -f "$RUN/eval.json" ] && [ -f "teachers/$name.json" ] && finished=1
[ "$finished" = 1 ] && paths+=("teachers/$name.pt" "teachers/$name.json")
if [ "$finished" = 0 ] && [ "${CARRY:-0}" = 1 ] && [ -f "$RUN/checkpoint.pt" ]; then
  cp "$RUN/checkpoint.pt" "$carried.tmp" && mv "$carried.tmp" "$carried" && paths+=("$carried")
fi
if [ "$finished" = 1 ] && [ -f "$carried" ]; then
  rm -f "$carried" && paths+=("$carried")
fi
if [ "$COMMIT" = 1 ]; then
  case $GAME in Pong|coinrun) issue=20 ;; *) issue=38 ;; esac
  for try in 1 2 3 4 5 6 7 8 9 10; do  # two streams may end at once: the other's commit holds git's index lock
    git add -A -- "${paths[@]}" && git commit -q -m "pixels: the $name teacher, a piece (issue #$issue)" -- "${paths[@]}" && break
    sleep $((try * 3))
  done
fi
[ "$status" -eq 0 ] && exit 0
exit 3
