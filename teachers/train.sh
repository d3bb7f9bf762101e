#!/usr/bin/env bash
# Trains the shipped Mujoco teachers (seed 1, the paper's PPO settings) on a 2-core CPU, two runs at a time;
# each writes teachers/{env_id}__1.pt and .json, and its log to teachers/logs/. Budgets (env:steps) were
# chosen to fit one 3-hour working session; the paper trained for 10M steps. They were trained on gymnasium's
# SyncVectorEnv, before envpool's v4 tasks became the scripts' default: --env-backend gymnasium reruns that.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1  # two runs on two cores: one torch thread each (oversubscription is ~10x slower)
mkdir -p teachers/logs
train() {
  for job in "$@"; do
    env=${job%%:*} steps=${job#*:}
    /usr/bin/time -f "%e s wall" python ppo_teacher_mujoco.py --env-id "$env" --seed 1 --total-timesteps "$steps" --env-backend gymnasium \
      --run-name "shipped_${env}" > "teachers/logs/${env}.log" 2>&1
  done
}
train Hopper-v4:2000000 Swimmer-v4:1000000 Ant-v4:1000000 &
train HalfCheetah-v4:2000000 Humanoid-v4:1000000 &
wait
