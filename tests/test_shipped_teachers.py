"""The teachers committed in teachers/: the Mujoco ones load, carry their statistics, and play well (the pixel
teachers, Pong and coinrun, play in tests/test_evaluate.py); every seed-1 teacher's training log is committed."""

import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, committed_teachers, load_script, read_json, run_main

# every committed teacher (what git ships, not a teacher a user trained into teachers/ by following the README):
# the shipped seed-1 files and the seed-2 ones that committed results divide by
COMMITTED = committed_teachers()
MUJOCO = [n for n in COMMITTED if read_json(os.path.join(ROOT, "teachers", f"{n}.json"))["suite"] == "mujoco"]
EPISODES = 3


def random_policy_returns(env_id: str) -> np.ndarray:
    env = gym.make(env_id)
    env.action_space.seed(0)
    returns = []
    for episode in range(EPISODES):
        env.reset(seed=100 + episode)
        total, over = 0.0, False
        while not over:
            _, reward, term, trunc, _ = env.step(env.action_space.sample())
            total, over = total + reward, term or trunc
        returns.append(total)
    env.close()
    return np.array(returns)


def test_every_committed_teacher_is_tested():
    assert len(MUJOCO) >= 7 and {"Hopper-v4__2", "HalfCheetah-v4__2"} <= set(MUJOCO)
    pixels = set(COMMITTED) - set(MUJOCO)  # Pong's test and the coinrun ones (one per seed) in test_evaluate.py
    procgen = ("coinrun__", "jumper__", "miner__", "ninja__")  # issue #38's teachers, as they land
    assert {"Pong-v5__1", "coinrun__1"} <= pixels and all(n == "Pong-v5__1" or n.startswith(procgen) for n in pixels)


@pytest.mark.parametrize("name", MUJOCO)
def test_committed_teacher_loads_plays_as_recorded_and_beats_a_random_policy(name):
    """Its own record (.json): the file's hash, 50 episodes; 3 episodes played here (the record's seed) score
    within the record's spread (its returns' range widened by one std: other CPUs round differently), and
    clearly above a random policy."""
    mujoco = load_script("ppo_teacher_mujoco")
    path = os.path.join(ROOT, "teachers", f"{name}.pt")
    env_id = name.split("__")[0]
    state = mujoco.load_checkpoint(path)
    assert state["env_id"] == env_id and state["suite"] == "mujoco" and "optimizer" not in state
    agent = mujoco.agent_from_checkpoint(state)
    obs_norm = mujoco.ObsNormalizer(tuple(state["obs_shape"]), clip=10.0)
    obs_norm.rms.load_state_dict(state["obs_rms"])
    assert obs_norm.rms.mean.shape == tuple(state["obs_shape"]) and obs_norm.rms.count > 1000
    assert (obs_norm.rms.var > 0).all() and not np.allclose(obs_norm.rms.mean, 0)

    record = read_json(os.path.join(ROOT, "teachers", f"{name}.json"))
    assert record["evaluation"]["episodes"] == 50 and record["env_id"] == env_id
    assert record["checkpoint_sha256"] == mujoco.sha256_of(path)  # how the report finds a student's teacher
    evaluation = mujoco.evaluate(
        agent,
        mujoco.Args(env_id=env_id),
        obs_norm,
        EPISODES,
        EPISODES,
        seed=record["seed"] + 10_000,
        device=torch.device("cpu"),
    )
    recorded = np.array(record["evaluation"]["returns"])
    spread = recorded.std()
    assert all(recorded.min() - spread <= r <= recorded.max() + spread for r in evaluation["returns"]), (
        evaluation["returns"],
        recorded.min(),
        recorded.max(),
    )
    random_returns = random_policy_returns(env_id)
    assert evaluation["mean"] > random_returns.mean() + 3 * random_returns.std(), (evaluation, random_returns)
    if random_returns.mean() > 0:
        assert evaluation["mean"] > 1.2 * random_returns.mean()


def test_readme_quickstart_runs_from_the_shipped_teacher(tmp_path):
    """`python ppd_mujoco.py --env-id Hopper --student larger`, from the repository root, no path flag."""
    proc = run_main(
        "ppd_mujoco.py",
        [
            "--env-id",
            "Hopper",
            "--student",
            "larger",
            "--total-timesteps",
            2 * 18 * 64,
            "--eval-episodes",
            2,
            "--runs-dir",
            tmp_path,
            "--run-name",
            "quickstart",
        ],
        cwd=ROOT,
    )
    assert "teacher evaluation" in proc.stdout
    result = read_json(tmp_path / "quickstart" / "eval.json")
    assert result["teacher"]["path"] == "teachers/Hopper-v4__1.pt" and result["student_size"] == "larger"
    assert (
        result["teacher"]["sha256"]
        == read_json(os.path.join(ROOT, "teachers", "Hopper-v4__1.json"))["checkpoint_sha256"]
    )
    assert result["total_timesteps"] == 2 * 18 * 64
    random_returns = random_policy_returns("Hopper-v4")  # the shipped teacher, not a fresh network
    assert result["teacher"]["evaluation"]["mean"] > random_returns.mean() + 3 * random_returns.std()


def test_teacher_records_count_the_steps_their_logs_show():
    """teachers/train.sh logged each seed-1 Mujoco teacher's training to teachers/logs/{env_id}.log,
    teachers/train_10m.sh (issue #22) to teachers/logs/{env_id}__{seed}.log, which takes precedence, and
    results/pixels/teacher.sh (issue #20) to results/pixels/{env_id}__{seed}_teacher.log; a .json's total_timesteps
    is the last step its log prints before it wrote the .json (the budget rounded down to whole rollouts; a run
    extended since, as miner's and ninja's, logs on)."""
    checked = []
    for name in COMMITTED:
        info = read_json(os.path.join(ROOT, "teachers", f"{name}.json"))
        logs = [
            os.path.join(ROOT, "teachers", "logs", f"{name}.log"),
            os.path.join(ROOT, "teachers", "logs", f"{info['env_id']}.log"),
            os.path.join(ROOT, "results", "pixels", f"{name}_teacher.log"),
        ]
        log = next((path for path in logs if os.path.isfile(path)), None)
        if info["seed"] != 1 or log is None:
            continue
        with open(log) as f:
            lines = f.read().splitlines()
        # an extended run's log goes on after the piece that wrote the .json: count up to that line
        wrote = [i for i, line in enumerate(lines) if line.startswith("wrote ") and line.endswith(f"/{name}.json")]
        steps = [
            int(line.split()[1].split("/")[0])
            for line in lines[: wrote[-1] if wrote else None]
            if line.startswith("step ")
        ]
        assert info["total_timesteps"] == steps[-1], name
        checked.append(name)
    assert checked == [n for n in COMMITTED if n.endswith("__1")]  # every shipped seed-1 teacher has its log
