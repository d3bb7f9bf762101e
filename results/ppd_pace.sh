#!/usr/bin/env bash
# Why is PPD slower than student-distill in its first ~500k steps on Mujoco (docs/results.md, "PPD's early
# pace")? Four 200k-step runs of ppd_mujoco.py on HalfCheetah-v4, smaller student, seed 1 (the shipped teacher),
# each with one line of Eq. 2's loss changed in a copy of the script (the way a researcher tries an idea):
#   eq2                  the script as it is: PPO-clip + value loss + lambda * KL * max(r, 1 - eps)
#   detach_ratio         the same, with r detached inside the distillation term (its gradient through r is zero
#                        in expectation over the rollout's actions, KL being a function of the state only); the
#                        study patched ppd_loss itself, this is now the default of --distill-ratio set to stopgrad
#   distill_only         lambda * KL * max(r, 1 - eps) alone: no PPO term, no value loss
#   distill_only_detach  lambda * KL * max(r, 1 - eps).detach'ed r alone: on-policy KL minimisation with PPD's
#                        rollouts, epochs and minibatches
# Writes results/ppd_pace/summary.csv: per student and variant, the 10-episode evaluation every 50k steps and at
# the end (eval.json), with the mean KL to the teacher and entropy logged over the 50k steps before it.
#     bash results/ppd_pace.sh                  # 8 runs: about 11 minutes here, beside two grid streams
#     SCRIPTS_ONLY=1 OUT=/tmp/p bash results/ppd_pace.sh   # only write the patched copies to /tmp/p/scripts
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-runs/ppd_pace}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT/scripts" results/ppd_pace

patch_line() {  # variant -> sed program applied to ppd_mujoco.py
  case $1 in
    eq2) echo "" ;;
    detach_ratio) echo 's/distill_ratio: Literal\["eq2", "stopgrad"\] = "eq2"/distill_ratio: Literal["eq2", "stopgrad"] = "stopgrad"/' ;;
    distill_only) echo "s/loss = loss + distill_lambda \* distill_loss/loss = distill_lambda * distill_loss/" ;;
    distill_only_detach) echo "$(patch_line detach_ratio); $(patch_line distill_only)" ;;
  esac
}

VARIANTS="eq2 detach_ratio distill_only distill_only_detach"
for variant in $VARIANTS; do
  script="$OUT/scripts/ppd_mujoco_$variant.py"
  sed "$(patch_line $variant)" ppd_mujoco.py > "$script"
  # each patch must change exactly the lines it names (a script edit that moves them makes this fail loudly)
  changed=$(diff ppd_mujoco.py "$script" | grep -c '^>' || true)
  want=$(case $variant in eq2) echo 0 ;; distill_only_detach) echo 2 ;; *) echo 1 ;; esac)
  [ "$changed" = "$want" ] || { echo "ppd_pace.sh: patch '$variant' changed $changed lines, not $want" >&2; exit 1; }
done
[ "${SCRIPTS_ONLY:-0}" = 1 ] && exit 0  # the patched copies only (tests/test_results.py checks them)
for student in smaller larger; do
  for variant in $VARIANTS; do
    name="${student}_$variant"
    [ -f "$OUT/runs/$name/eval.json" ] && continue
    "$PY" "$OUT/scripts/ppd_mujoco_$variant.py" --env-id HalfCheetah-v4 --seed 1 --student $student \
      --teacher-path teachers/HalfCheetah-v4__1.pt --total-timesteps 200000 --eval-every 50000 --eval-episodes 10 \
      --runs-dir "$OUT/runs" --run-name "$name" > "$OUT/$name.log" 2>&1
  done
done

"$PY" - "$OUT/runs" results/ppd_pace/summary.csv <<'EOF'
import csv, json, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
runs_dir, out = sys.argv[1:]
rows = []
for student in ["smaller", "larger"]:
    for variant in ["eq2", "detach_ratio", "distill_only", "distill_only_detach"]:
        run_dir = os.path.join(runs_dir, f"{student}_{variant}")
        events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
        events.Reload()
        scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
        final = json.load(open(os.path.join(run_dir, "eval.json")))
        points = scalars["eval/episodic_return"] + [(final["total_timesteps"], final["evaluation"]["mean"])]
        for step, ret in points:
            # the mean of the training scalars logged over the 50k steps up to this evaluation
            mean = {tag: [v for s, v in scalars[tag] if step - 50000 < s <= step]
                    for tag in ("losses/distill_kl", "losses/entropy")}
            if all(mean.values()):
                rows.append({"student": student, "variant": variant, "step": step, "eval_return": round(ret, 1),
                             **{tag.split("/")[1]: round(sum(v) / len(v), 3) for tag, v in mean.items()}})
tmp = out + ".tmp"
with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
os.replace(tmp, out)
print(open(out).read())
EOF
