"""Learning progress, determinism and resume of the Mujoco teacher, on real environments."""

import numpy as np

from conftest import load_script, read_json, read_scalars, run_main

FAST = [
    "--env-id",
    "InvertedPendulum",
    "--num-envs",
    "4",
    "--num-steps",
    "64",
    "--minibatch-size",
    "64",
    "--hidden-sizes",
    "32",
    "32",
    "--eval-episodes",
    "2",
    "--eval-envs",
    "2",
]


def test_teacher_learns_inverted_pendulum(pendulum_teacher):
    """A random policy balances for ~5-10 steps; PPO should reach a mean return of at least 500 in 40k steps
    (conftest's pendulum_teacher run, which the distillation learning tests use as their teacher)."""
    result = read_json(pendulum_teacher / "runs" / "teacher" / "eval.json")
    assert result["evaluation"]["mean"] >= 500, result["evaluation"]
    returns = [v for _, v in read_scalars(str(pendulum_teacher / "runs" / "teacher"))["charts/episodic_return"]]
    assert np.mean(returns[-20:]) > 5 * np.mean(returns[:20])


def test_same_seed_same_losses(tmp_path):
    for name in ("a", "b"):
        run_main(
            "ppo_teacher_mujoco.py",
            [*FAST, "--total-timesteps", "768", "--run-name", name, "--teachers-dir", f"teachers_{name}"],
            cwd=tmp_path,
        )
    a, b = (read_scalars(str(tmp_path / "runs" / name)) for name in ("a", "b"))
    for tag in ("losses/value_loss", "losses/policy_loss", "losses/approx_kl", "charts/episodic_return"):
        assert a[tag] == b[tag] and len(a[tag]) > 0, tag
    c = tmp_path / "c"
    c.mkdir()
    run_main("ppo_teacher_mujoco.py", [*FAST, "--total-timesteps", "768", "--run-name", "c", "--seed", "2"], cwd=c)
    assert read_scalars(str(c / "runs" / "c"))["losses/value_loss"] != a["losses/value_loss"]


def test_resume_continues_from_saved_state(tmp_path):
    batch = 4 * 64
    run_main("ppo_teacher_mujoco.py", [*FAST, "--total-timesteps", 2 * batch, "--run-name", "r"], cwd=tmp_path)
    module = load_script("ppo_teacher_mujoco")
    checkpoint = tmp_path / "runs" / "r" / "checkpoint.pt"
    saved = module.load_checkpoint(str(checkpoint))
    assert saved["update"] == 2 and saved["global_step"] == 2 * batch
    adam_steps = saved["optimizer"]["state"][0]["step"].item()
    assert adam_steps == 2 * 4 * 4  # updates x epochs x minibatches

    proc = run_main(
        "ppo_teacher_mujoco.py", [*FAST, "--total-timesteps", 4 * batch, "--resume", checkpoint], cwd=tmp_path
    )
    assert f"step {3 * batch}/{4 * batch}" in proc.stdout and f"step {batch}/" not in proc.stdout
    resumed = module.load_checkpoint(str(checkpoint))
    assert resumed["update"] == 4 and resumed["global_step"] == 4 * batch
    assert resumed["optimizer"]["state"][0]["step"].item() == 2 * adam_steps  # Adam moments carried on
    assert resumed["obs_rms"]["count"] > saved["obs_rms"]["count"] + 2 * batch - 1  # statistics carried on
    scalars = read_scalars(str(tmp_path / "runs" / "r"))
    steps = [s for s, _ in scalars["losses/value_loss"]]
    assert sorted(set(steps)) == [batch, 2 * batch, 3 * batch, 4 * batch]  # one run folder, all four updates
