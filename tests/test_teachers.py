"""The three PPO teacher scripts, end to end and piece by piece."""

import math

import numpy as np
import pytest
import torch

from conftest import (
    CANONICAL,
    SHAPES,
    SUITES,
    TINY,
    TINY_STEPS,
    check_run_record,
    load_script,
    read_json,
    read_scalars,
    run_cli,
)

SCALARS = [
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/SPS",
    "charts/learning_rate",
    "losses/value_loss",
    "losses/policy_loss",
    "losses/entropy",
    "losses/old_approx_kl",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
]
EVAL_KEYS = {
    "script",
    "method",
    "suite",
    "env_id",
    "seed",
    "total_timesteps",
    "student_size",
    "policy_params",
    "checkpoint_sha256",
    "evaluation",
    "evaluation_train_levels",
    "training_envs",
    "ran_on",
}
EVALUATION_KEYS = {"episodes", "deterministic", "levels", "returns", "mean", "std", "human_normalized", "envs"}
# Observation shape and action count of a sample env per suite (for in-process network tests).


@pytest.mark.parametrize("suite", SUITES)
def test_end_to_end_outputs(suite, teacher_runs):
    work, proc = teacher_runs[suite]
    run_dir = work / "runs" / "tiny"
    # Progress line: step / total, SPS, ETA, recent mean return.
    assert f"step {TINY_STEPS[suite]}/{TINY_STEPS[suite]} | SPS" in proc.stdout and "ETA" in proc.stdout

    scalars = read_scalars(str(run_dir))
    for tag in SCALARS:
        assert tag in scalars, tag
        assert all(math.isfinite(v) or tag == "losses/explained_variance" for _, v in scalars[tag]), tag
    assert scalars["losses/value_loss"][-1][0] == TINY_STEPS[suite]
    # --eval-every TINY_STEPS/2: an evaluation at the first update past each multiple, one episode each
    assert [step for step, _ in scalars["eval/episodic_return"]] == [TINY_STEPS[suite] // 2, TINY_STEPS[suite]]
    if suite == "atari":  # --max-episode-steps 50: every Pong game is truncated, and still counted
        assert len(scalars["charts/episodic_length"]) >= 4
        assert {v for _, v in scalars["charts/episodic_length"]} == {50.0}

    result = read_json(run_dir / "eval.json")
    assert set(result) == EVAL_KEYS
    assert result["script"] == f"ppo_teacher_{suite}.py" and result["method"] == "ppo"
    assert result["suite"] == suite and result["env_id"] == CANONICAL[suite] and result["seed"] == 1
    assert result["student_size"] is None and result["total_timesteps"] == TINY_STEPS[suite]
    check_run_record(result, load_script(f"ppo_teacher_{suite}"), suite)
    evaluation = result["evaluation"]
    episodes = int(TINY[suite][TINY[suite].index("--eval-episodes") + 1])
    if suite == "atari":  # games' lengths and how many the step limit ended: here every game, at 50 steps
        assert set(evaluation) == EVALUATION_KEYS | {"lengths", "capped"}
        assert evaluation["lengths"] == [50] * episodes and evaluation["capped"] == episodes
    else:
        assert set(evaluation) == EVALUATION_KEYS
    assert evaluation["episodes"] == episodes == len(evaluation["returns"])
    assert evaluation["mean"] == pytest.approx(np.mean(evaluation["returns"]))
    if suite == "procgen":
        assert evaluation["levels"] == "test" and evaluation["deterministic"] is False
        assert result["evaluation_train_levels"]["levels"] == "train"
    else:
        assert evaluation["levels"] is None and evaluation["deterministic"] is True
        assert result["evaluation_train_levels"] is None
    if suite == "atari":  # Pong: (score + 20.7) / (14.6 + 20.7)
        assert evaluation["human_normalized"] == pytest.approx((evaluation["mean"] + 20.7) / 35.3)
    else:
        assert evaluation["human_normalized"] is None

    # Checkpoint in the run folder (resumable) and the policy-only teacher at the default location.
    module = load_script(f"ppo_teacher_{suite}")
    full = module.load_checkpoint(str(run_dir / "checkpoint.pt"))
    teacher = module.load_checkpoint(str(work / "teachers" / f"{CANONICAL[suite]}__1.pt"))
    assert "optimizer" in full and "optimizer" not in teacher
    assert teacher["suite"] == suite and teacher["env_id"] == CANONICAL[suite]
    assert teacher["global_step"] == TINY_STEPS[suite] and teacher["network"] == full["network"]
    assert (teacher["obs_rms"] is not None) == (suite == "mujoco")
    agent = module.agent_from_checkpoint(teacher)
    assert agent.policy_params() == result["policy_params"]
    assert read_json(work / "teachers" / f"{CANONICAL[suite]}__1.json") == result
    assert result["checkpoint_sha256"] == module.sha256_of(str(work / "teachers" / f"{CANONICAL[suite]}__1.pt"))


@pytest.mark.parametrize("suite", SUITES)
def test_checkpoint_round_trip(suite, tmp_path):
    module = load_script(f"ppo_teacher_{suite}")
    obs_shape, n_actions = SHAPES[suite]
    torch.manual_seed(0)
    spec = module.network_spec((32, 32)) if suite == "mujoco" else module.network_spec("impala", (4, 8, 8), 16)
    agent = module.Agent(spec, obs_shape, n_actions)
    args = module.Args()
    args.env_id = CANONICAL[suite]
    rng = np.random.default_rng(0)
    if suite == "mujoco":
        obs_norm = module.ObsNormalizer(obs_shape, clip=10.0)
        obs_norm(rng.normal(3.0, 2.0, size=(100,) + obs_shape))  # non-trivial statistics
        raw = rng.normal(3.0, 2.0, size=(8,) + obs_shape)
    else:
        obs_norm = None
        raw = rng.integers(0, 256, size=(8,) + obs_shape, dtype=np.uint8)
    path = str(tmp_path / "checkpoint.pt")
    module.save_checkpoint(path, agent, args, obs_norm, global_step=123, update=4)
    state = module.load_checkpoint(path)
    loaded = module.agent_from_checkpoint(state)

    def outputs(a, normalizer):
        x = torch.as_tensor(normalizer(raw, update=False) if normalizer else raw)
        with torch.no_grad():
            action, _, _, value = a.get_action_and_value(x, deterministic=True)
            torch.manual_seed(7)
            sampled = a.get_action_and_value(x)[0]
        return action, value, sampled

    if suite == "mujoco":
        loaded_norm = module.ObsNormalizer(obs_shape, clip=10.0)
        loaded_norm.rms.load_state_dict(state["obs_rms"])
        np.testing.assert_array_equal(loaded_norm.rms.mean, obs_norm.rms.mean)
    else:
        loaded_norm = None
    for before, after in zip(outputs(agent, obs_norm), outputs(loaded, loaded_norm)):
        torch.testing.assert_close(before, after, rtol=0, atol=0)
    assert state["global_step"] == 123 and state["update"] == 4 and state["env_id"] == CANONICAL[suite]


def test_parameter_counts_table4_same_size():
    """Table 4 'same-size' column: policy trunk + action head, averaged over the suite's envs."""
    atari = load_script("ppo_teacher_atari")
    actions = {
        "Atlantis": 4,
        "BeamRider": 9,
        "CrazyClimber": 9,
        "DemonAttack": 6,
        "Enduro": 9,
        "Freeway": 3,
        "MsPacman": 9,
        "Pong": 6,
        "Qbert": 6,
        "Seaquest": 18,
        "Zaxxon": 18,
    }
    spec = atari.network_spec("impala", (16, 32, 32), 256)
    counts = [atari.Agent(spec, (4, 84, 84), n).policy_params() for n in actions.values()]
    assert np.mean(counts) == pytest.approx(1_091_498, abs=1)

    procgen = load_script("ppo_teacher_procgen")
    assert procgen.Agent(procgen.network_spec("impala", (16, 32, 32), 256), (64, 64, 3), 15).policy_params() == 625_999

    import gymnasium as gym

    mujoco = load_script("ppo_teacher_mujoco")
    counts = []
    for env_id in ("Ant-v4", "HalfCheetah-v4", "Hopper-v4", "Humanoid-v4"):
        env = gym.make(env_id)
        counts.append(
            mujoco.Agent(
                mujoco.network_spec((256, 256)), env.observation_space.shape, env.action_space.shape[0]
            ).policy_params()
        )
        env.close()
    assert np.mean(counts) == pytest.approx(95_816.5)


@pytest.mark.parametrize("suite", SUITES)
def test_env_id_aliases_and_defaults(suite):
    module = load_script(f"ppo_teacher_{suite}")
    short = {"mujoco": "Hopper", "atari": "Pong", "procgen": "StarPilot"}[suite]
    assert module.canonical_env_id(short) == CANONICAL[suite]
    assert module.canonical_env_id(CANONICAL[suite]) == CANONICAL[suite]
    if suite == "mujoco":  # Table 3 per-env defaults
        hopper = module.resolve_args(module.Args(env_id="Hopper"))
        ant = module.resolve_args(module.Args(env_id="Ant"))
        assert (hopper.num_steps, hopper.ent_coef, ant.num_steps, ant.ent_coef) == (256, 0.01, 512, 0.0)


def test_atari_help_lists_the_paper_games(capsys, monkeypatch):
    module = load_script("ppo_teacher_atari")
    code, out, _ = run_cli(module, ["--help"], capsys, monkeypatch)
    assert code == 0
    for game in (
        "Atlantis",
        "BeamRider",
        "CrazyClimber",
        "DemonAttack",
        "Enduro",
        "Freeway",
        "MsPacman",
        "Pong",
        "Qbert",
        "Seaquest",
        "Zaxxon",
    ):
        assert game in out


BAD_FLAGS = [
    (["--env-id", "NoSuchGame"], "unknown env id 'NoSuchGame'"),
    (["--num-envs", "0"], "--num-envs must be positive"),
    (["--num-steps", "-4"], "--num-steps must be positive"),
    (["--minibatch-size", "100000"], "larger than the rollout batch"),
    (["--ent-coef", "-0.1"], "--ent-coef must not be negative"),
    (["--vf-coef", "-1"], "--vf-coef must not be negative"),
    (["--learning-rate", "0"], "--learning-rate must be positive"),
]
MUJOCO_BAD_FLAGS = [
    (
        ["--env-backend", "gym3"],
        "invalid choice 'gym3' for argument '--env-backend'. Expected one of ('envpool', 'gymnasium')",
    )
]


@pytest.mark.parametrize(
    "suite,argv,message",
    [(s, a, m) for s in SUITES for a, m in BAD_FLAGS] + [("mujoco", a, m) for a, m in MUJOCO_BAD_FLAGS],
)
def test_bad_flags(suite, argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    module = load_script(f"ppo_teacher_{suite}")
    code, _, err = run_cli(module, argv, capsys, monkeypatch)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # rejected before any work


@pytest.mark.parametrize("suite", SUITES)
def test_bad_resume(suite, teacher_runs, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    module = load_script(f"ppo_teacher_{suite}")
    good = teacher_runs[suite][0] / "runs" / "tiny" / "checkpoint.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    other_suite = next(s for s in SUITES if s != suite)
    foreign = teacher_runs[other_suite][0] / "runs" / "tiny" / "checkpoint.pt"
    other_env = {"mujoco": "Ant", "atari": "Breakout", "procgen": "miner"}[suite]
    cases = [
        ([str(tmp_path / "missing.pt")], "checkpoint not found"),
        ([str(truncated)], "not a complete checkpoint file"),
        ([str(not_a_checkpoint)], "not a complete checkpoint file"),
        ([str(foreign)], f"not a resumable ppo_teacher_{suite}.py run"),
        ([str(good), "--env-id", other_env], "--env-id " + other_env),  # contradicts the checkpoint's env
    ]
    for extra, message in cases:
        code, _, err = run_cli(module, ["--resume", extra[0], *extra[1:]], capsys, monkeypatch)
        assert code == 2 and message in err, (extra, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
