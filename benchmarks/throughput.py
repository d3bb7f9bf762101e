"""Throughput of every training script, with the time split of a rollout and the raw env limit.

Runs the teacher (PPO with the same student network and PPD's settings), PPD, student-distill and
teacher-distill for a fixed number of updates, reads their steps per second back from tensorboard (the first
update, with its start-up, is left out), times the parts of a rollout in-process (env step, acting forward,
teacher forward, update), measures raw env throughput with random actions, and prints a markdown table.

    python benchmarks/throughput.py                      # Hopper-v4, larger student, CPU
    python benchmarks/throughput.py --env-id Pong        # on a GPU box
    python benchmarks/throughput.py --env-id Pong --no-cuda   # the same box's CPU
"""

import contextlib
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import tyro

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@dataclass
class Args:
    env_id: Optional[str] = None
    """Mujoco or Atari env id (default: Hopper-v4 without a GPU, Pong-v5 with one)"""
    student: str = "larger"
    """student size of PPD, SD, TD, and the network of the PPO run"""
    updates: int = 6
    """updates per script (the first is left out of the SPS)"""
    num_envs: int = 18
    """parallel environments (paper: 18)"""
    sd_td_steps: int = 2000
    """environment steps of the student-distill and teacher-distill runs"""
    raw_steps: int = 200
    """vector steps of the raw env measurements"""
    teacher_path: Optional[str] = None
    """teacher checkpoint (default: teachers/{env_id}__1.pt; one is trained briefly if missing)"""
    cuda: bool = True
    """measure on the GPU when one is visible (--no-cuda: the CPU, also on a GPU box)"""


def machine(gpu: bool) -> str:
    if gpu:
        return torch.cuda.get_device_name(0)
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def resolve(env_id: str):
    """(suite, canonical env id, the suite's PPD module)."""
    for suite in ("mujoco", "atari"):
        module = __import__(f"ppd_{suite}")
        try:
            return suite, module.canonical_env_id(env_id), module
        except module.UsageError:
            pass
    print(f"error: unknown env id '{env_id}': the benchmark covers Mujoco and Atari", file=sys.stderr)
    sys.exit(2)


def run(script: str, flags: list, cwd: str) -> float:
    """Runs a script; returns its SPS after the first update, from the tensorboard event wall times."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *map(str, flags), "--run-name", "bench", "--eval-episodes", "0"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"error: {script} failed: {proc.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        sys.exit(1)
    acc = EventAccumulator(os.path.join(cwd, "runs", "bench"), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars("losses/value_loss")
    subprocess.run(["rm", "-rf", os.path.join(cwd, "runs", "bench")], check=True)
    first, last = events[0], events[-1]
    return (last.step - first.step) / (last.wall_time - first.wall_time)


def timed(fn, repeat: int) -> float:
    """Seconds per call of fn; on a GPU the clock starts once the warm-up call's kernels are done and stops once the
    last call's are."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - start) / repeat


def raw_env_sps(make, sample, steps: int, num_envs: int) -> float:
    env = make()
    env.reset()
    actions = [sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    sps = steps * num_envs / (time.perf_counter() - start)
    env.close()
    return sps


def main() -> None:
    args = tyro.cli(Args)
    gpu = torch.cuda.is_available() and args.cuda
    suite, env_id, ppd = resolve(args.env_id or ("Pong-v5" if gpu else "Hopper-v4"))
    n = args.num_envs
    device_flag = "--cuda" if gpu else "--no-cuda"  # the scripts run where the benchmark measures
    work = tempfile.mkdtemp(prefix="throughput_")
    teacher_path = os.path.abspath(args.teacher_path or os.path.join(ROOT, "teachers", f"{env_id}__1.pt"))
    if not os.path.isfile(teacher_path):  # a brief teacher: throughput does not depend on its quality
        subprocess.run(
            [
                sys.executable,
                os.path.join(ROOT, f"ppo_teacher_{suite}.py"),
                "--env-id",
                env_id,
                "--total-timesteps",
                4 * 64 * n,
                "--num-steps",
                64,
                "--eval-episodes",
                0,
                device_flag,
                "--teachers-dir",
                work,
            ],
            cwd=work,
            check=True,
            capture_output=True,
        )
        teacher_path = os.path.join(work, f"{env_id}__1.pt")

    # Training throughput: PPO with the student's network and PPD's settings, PPD, SD, TD.
    student = ppd.STUDENT_SIZES[args.student]
    net = (
        ["--hidden-sizes", *student]
        if suite == "mujoco"
        else ["--arch", student[0], "--channels", *student[1], "--fc-size", student[2]]
    )
    common = ["--env-id", env_id, "--num-envs", n, device_flag]
    rollout = 64 * n
    ppo_sps = run(
        f"ppo_teacher_{suite}.py",
        [
            *common,
            *net,
            "--num-steps",
            64,
            "--ent-coef",
            0,
            "--gamma",
            0.999,
            "--total-timesteps",
            args.updates * rollout,
        ],
        work,
    )
    ppd_sps = run(
        f"ppd_{suite}.py",
        [
            *common,
            "--student",
            args.student,
            "--teacher-path",
            teacher_path,
            "--total-timesteps",
            args.updates * rollout,
        ],
        work,
    )
    # Mujoco: the same PPD run on gymnasium's SyncVectorEnv, the scripts' other training backend.
    ppd_gym_sps = (
        run(
            f"ppd_{suite}.py",
            [
                *common,
                "--student",
                args.student,
                "--teacher-path",
                teacher_path,
                "--total-timesteps",
                args.updates * rollout,
                "--env-backend",
                "gymnasium",
            ],
            work,
        )
        if suite == "mujoco"
        else None
    )
    sd_sps, td_sps = (
        run(
            script,
            [
                *common,
                "--student",
                args.student,
                "--teacher-path",
                teacher_path,
                "--total-timesteps",
                args.sd_td_steps,
                "--checkpoint-every",
                10_000,
            ],
            work,
        )
        for script in ("student_distill.py", "teacher_distill.py")
    )

    # Time split of one PPD rollout and update, in-process with the scripts' own networks.
    state = ppd.load_checkpoint(teacher_path)
    teacher = ppd.agent_from_checkpoint(state)
    spec = ppd.network_spec(student) if suite == "mujoco" else ppd.network_spec(*student)
    agent = ppd.Agent(spec, tuple(state["obs_shape"]), state["action_dim"])
    device = torch.device("cuda" if gpu else "cpu")
    agent, teacher = agent.to(device), teacher.to(device)
    if suite == "mujoco":
        obs = torch.randn(n, *state["obs_shape"], device=device)
    else:
        obs = torch.randint(0, 256, (n, *state["obs_shape"]), dtype=torch.uint8, device=device)
    with torch.inference_mode():
        acting = timed(lambda: agent.get_action_and_value(obs), 50) * 64
        teacher_fwd = timed(lambda: teacher.get_dist(obs), 50) * 64
    batch = obs.repeat(512 // n + 1, *[1] * (obs.dim() - 1))[:512]
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5, fused=True)  # as the scripts

    def minibatch_step():
        dist = agent.get_dist(batch)
        loss = dist.entropy().mean() + agent.get_value(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    update = timed(minibatch_step, 5) * 4 * (rollout / 512)

    # Raw env throughput with random actions.
    rng = np.random.default_rng(0)
    raws = {}
    if suite == "mujoco":
        import gymnasium as gym

        space = gym.make(env_id).action_space
        sample = lambda: rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32)  # noqa: E731
        for mode in ("sync", "async"):
            raws[f"gymnasium {mode}"] = raw_env_sps(
                lambda: gym.make_vec(env_id, num_envs=n, vectorization_mode=mode), sample, args.raw_steps, n
            )
        with contextlib.redirect_stderr(io.StringIO()):  # envpool imports the old gym, which prints a banner
            import envpool
        raws["envpool"] = raw_env_sps(
            lambda: envpool.make(env_id, env_type="gymnasium", num_envs=n), sample, args.raw_steps, n
        )
        raws["envpool, 1 thread"] = raw_env_sps(
            lambda: envpool.make(env_id, env_type="gymnasium", num_envs=n, num_threads=1), sample, args.raw_steps, n
        )
        env_raw = raws["envpool"]  # what the scripts train on by default
    else:
        n_actions = state["action_dim"]
        raws["envpool"] = raw_env_sps(
            lambda: ppd.make_env(env_id, n, 1, 27_000), lambda: rng.integers(0, n_actions, n), args.raw_steps, n
        )
        env_raw = raws["envpool"]
    env_time = rollout / env_raw

    print(f"## Throughput: {env_id}, {args.student} student, {n} envs\n\nMachine: {machine(gpu)}\n")
    print("| script | SPS |\n|---|---|")
    rows = [("PPO (student network, PPD settings)", ppo_sps), ("PPD", ppd_sps)]
    rows += [("PPD, --env-backend gymnasium", ppd_gym_sps)] if ppd_gym_sps else []
    for name, sps in rows + [("student-distill", sd_sps), ("teacher-distill", td_sps)]:
        print(f"| {name} | {sps:,.0f} |" if sps >= 100 else f"| {name} | {sps:.2f} |")
    total = env_time + acting + teacher_fwd + update
    print("\n| PPD time per rollout of 64 steps | seconds | share |\n|---|---|---|")
    for name, t in (
        ("env step (raw)", env_time),
        ("acting forward", acting),
        ("teacher forward", teacher_fwd),
        ("update (4 epochs)", update),
    ):
        print(f"| {name} | {t:.3f} | {t / total:.0%} |")
    print("\n| raw env, random actions | SPS |\n|---|---|")
    for name, sps in raws.items():
        print(f"| {name} | {sps:,.0f} |")
    print("\n| ratio | value |\n|---|---|")
    print(f"| PPD / PPO | {ppd_sps / ppo_sps:.2f} |")
    print(f"| PPD / raw env | {ppd_sps / env_raw:.2f} |")
    print(f"| SD / PPD | {sd_sps / ppd_sps:.2f} |")
    print(f"| TD / PPD | {td_sps / ppd_sps:.2f} |")
    if ppd_gym_sps:
        print(f"| PPD envpool / PPD gymnasium | {ppd_sps / ppd_gym_sps:.2f} |")


if __name__ == "__main__":
    main()
