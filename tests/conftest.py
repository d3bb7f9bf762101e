"""Shared helpers: run the real scripts, read back their real outputs."""

import importlib
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Tiny settings per suite, so that a whole run takes seconds on 2 CPU cores: rollout and evaluation flags
# shared by every script (TINY), and small teacher networks (TINY_TEACHER_NET).
TINY = {
    "mujoco": ["--env-id", "Hopper", "--num-envs", "4", "--num-steps", "64", "--minibatch-size", "64",
               "--eval-episodes", "2", "--eval-envs", "2"],
    "atari": ["--env-id", "Pong", "--num-envs", "4", "--num-steps", "32", "--minibatch-size", "64",
              "--eval-episodes", "2", "--eval-envs", "2", "--max-episode-steps", "50"],
    "procgen": ["--env-id", "starpilot", "--num-envs", "4", "--num-steps", "32", "--minibatch-size", "64",
                "--eval-episodes", "2", "--eval-envs", "2"],
}
TINY_TEACHER_NET = {"mujoco": ["--hidden-sizes", "32", "32"], "atari": ["--channels", "4", "4", "4", "--fc-size", "16"],
                    "procgen": ["--channels", "4", "4", "4", "--fc-size", "16"]}
TINY_STEPS = {"mujoco": 512, "atari": 256, "procgen": 512}
CANONICAL = {"mujoco": "Hopper-v4", "atari": "Pong-v5", "procgen": "starpilot"}  # starpilot: short episodes
SUITES = tuple(TINY)


def load_script(name: str):
    """Import a top-level script as a module (they have no side effects on import)."""
    return importlib.import_module(name)


def run_script(script: str, args, cwd, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def read_scalars(run_dir: str) -> dict:
    """tag -> list of (step, value) from the tensorboard event files of a run folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_cli(module, argv, capsys, monkeypatch):
    """Run module.main() in-process with argv; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [module.SCRIPT, *map(str, argv)])
    code = 0
    try:
        module.main()
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="session")
def teacher_runs(tmp_path_factory):
    """One tiny teacher run per suite, shared by the tests that read its outputs: suite -> work dir."""
    dirs = {}
    for suite in SUITES:
        work = tmp_path_factory.mktemp(f"teacher_{suite}")
        proc = run_script(f"ppo_teacher_{suite}.py", [*TINY[suite], *TINY_TEACHER_NET[suite],
                                                      "--total-timesteps", TINY_STEPS[suite],
                                                      "--run-name", "tiny", "--checkpoint-every", "1"], cwd=work)
        dirs[suite] = (work, proc)
    return dirs


@pytest.fixture(scope="session")
def pendulum_teacher(tmp_path_factory):
    """A competent InvertedPendulum-v4 teacher trained here (about 20 s), for the learning tests."""
    work = tmp_path_factory.mktemp("pendulum")
    run_script("ppo_teacher_mujoco.py", ["--env-id", "InvertedPendulum", "--total-timesteps", "40000",
                                         "--num-steps", "64", "--eval-episodes", "10", "--run-name", "teacher"],
               cwd=work)
    return work
