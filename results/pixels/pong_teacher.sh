#!/usr/bin/env bash
# Issue #20, part 3: the Pong teacher to ship as teachers/Pong-v5__1.pt, trained in pieces on this CPU machine.
# ppo_teacher_atari.py with the paper's settings (A.2, Table 3: 18 envs x 256 steps, minibatch 512, 4 epochs,
# lr 3e-4, gamma 0.995, GAE 0.9, ent 0.01, life-loss episodes) except the network: Nature-CNN {32, 64, 64} with a
# 512-unit layer instead of the paper's IMPALA-CNN {16, 32, 32}/256, which costs ~8x more per sample here
# (docs/throughput.md: 6.1 s against 0.76 s per 512-sample forward + backward on one thread). Budget 5M steps
# (the paper: 10M), to be extended with --total-timesteps if the final evaluation is below +18.
#
# Each call trains for at most PIECE_MINUTES (default 120), then SIGTERMs the run, which writes its checkpoint
# and stops; the next call resumes it (runs/pixels/ is not committed: the resumable checkpoint is 40 MB). The
# log is appended to results/pixels/pong_teacher.log and the training curve (charts/episodic_return per game)
# is written to results/pixels/pong_teacher_curve.csv after every piece; commit both. When the run finishes it
# writes teachers/Pong-v5__1.pt (policy only) and its .json (50 full games, deterministic): commit those too.
#
#     bash results/pixels/pong_teacher.sh                   # one piece of at most two hours
#     PIECE_MINUTES=30 bash results/pixels/pong_teacher.sh  # a shorter one
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
RUN=runs/pixels/Pong-v5__teacher__1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one torch thread: the other core runs the second stream
if [ -f "$RUN/checkpoint.pt" ]; then
  cmd=("$PY" ppo_teacher_atari.py --resume "$RUN")
else
  cmd=("$PY" ppo_teacher_atari.py --env-id Pong --seed 1 --arch nature --channels 32 64 64 --fc-size 512
       --total-timesteps 5000000 --run-name Pong-v5__teacher__1 --runs-dir runs/pixels)
fi
timeout --signal=TERM --kill-after=120 "${PIECE_MINUTES:-120}m" "${cmd[@]}" >> results/pixels/pong_teacher.log 2>&1
status=$?
"$PY" - "$RUN" results/pixels/pong_teacher_curve.csv <<'PYEOF'
import csv, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run, out = sys.argv[1:]
acc = EventAccumulator(run, size_guidance={"scalars": 0})
acc.Reload()
rows = [(e.step, e.value) for e in acc.Scalars("charts/episodic_return")]
with open(out + ".tmp", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["step", "episodic_return"])
    writer.writerows(rows)
os.replace(out + ".tmp", out)
print(f"{len(rows)} games up to step {rows[-1][0] if rows else 0}")
PYEOF
exit $status
