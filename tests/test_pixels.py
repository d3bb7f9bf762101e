"""The pixel paths (Atari, Procgen) end to end, where a broken path would show: a decisive teacher is learned
by all three distillation scripts through their own training loops, Atari games are counted per game (not per
life) in training and in evaluation, and Procgen's test levels never overlap the training levels."""

import os

import envpool
import numpy as np
import pytest
import torch

from conftest import CANONICAL, TINY, TINY_TEACHER_NET, load_script, read_json, read_scalars, run_cli

FAVOURED = 1  # the decisive teacher's action: FIRE in Atari's minimal action sets, a move in Procgen's 15


def decisive_teacher(teacher_runs, suite: str, path, env_id=None, action_dim=None):
    """A real teacher checkpoint (the tiny teacher of conftest, its file format) whose actor head ignores the
    features and puts logit 30 on FAVOURED: its policy is that action with probability 1 in float32.
    env_id/action_dim re-target it to another game of the suite (the network does not depend on the game)."""
    module = load_script(f"ppo_teacher_{suite}")
    state = module.load_checkpoint(str(teacher_runs[suite][0] / "teachers" / f"{CANONICAL[suite]}__1.pt"))
    head = [k for k in state["actor"] if k.endswith(".weight")][-1][: -len(".weight")]
    n = action_dim or state["action_dim"]
    weight = state["actor"][f"{head}.weight"]
    state["actor"][f"{head}.weight"] = torch.zeros(n, weight.shape[1])
    state["actor"][f"{head}.bias"] = torch.zeros(n)
    state["actor"][f"{head}.bias"][FAVOURED] = 30.0
    state["action_dim"] = n
    if env_id:
        state["env_id"] = env_id
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return path


SCRIPTS = {"ppd": "ppd_{suite}", "student_distill": "student_distill", "teacher_distill": "teacher_distill"}


@pytest.mark.parametrize("suite", ["atari", "procgen"])
@pytest.mark.parametrize("method", list(SCRIPTS))
def test_a_decisive_teacher_is_learned(method, suite, teacher_runs, capsys, monkeypatch, tmp_path):
    """Through each script's own training loop (Pong; starpilot): the student's probability of the teacher's
    action rises from about 1/|A| to above 0.9 and losses/distill_kl falls; teacher-distill's rollout actions
    are the teacher's."""
    monkeypatch.chdir(tmp_path)
    teacher = decisive_teacher(teacher_runs, suite, str(tmp_path / "teachers" / f"{CANONICAL[suite]}__1.pt"))
    module = load_script(SCRIPTS[method].format(suite=suite))
    # the baselines take one gradient step per 4 x 5 samples (A.3): a larger step size gets them there sooner
    steps, lr = {"ppd": (1024, "3e-4"), "student_distill": (4000, "1e-3"), "teacher_distill": (4000, "1e-3")}[method]
    flags = TINY[suite] if method == "ppd" else [f for f in TINY[suite] if f not in ("--minibatch-size", "64")]
    code, out, err = run_cli(
        module,
        [
            *flags,
            "--teacher-path",
            teacher,
            "--student",
            "smaller",
            "--total-timesteps",
            steps,
            "--learning-rate",
            lr,
            "--eval-episodes",
            0,
            "--dump-last-rollout",
            "--run-name",
            "run",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    run_dir = tmp_path / "runs" / "run"
    rollout = torch.load(run_dir / "last_rollout.pt")
    obs = rollout["obs"].reshape(-1, *rollout["obs"].shape[2:])
    state = module.load_checkpoint(str(run_dir / "checkpoint.pt"))
    student = module.agent_from_checkpoint(state)
    n = state["action_dim"]
    torch.manual_seed(0)
    fresh = type(student)(student.spec, student.obs_shape, n)  # the same network before any training
    with torch.no_grad():
        before = fresh.get_dist(obs).probs[:, FAVOURED].mean().item()
        after = student.get_dist(obs).probs[:, FAVOURED].mean().item()
    assert 0.5 / n < before < 2.0 / n, before
    assert after > 0.9, after
    kl = [v for _, v in read_scalars(str(run_dir))["losses/distill_kl"]]
    assert kl[-1] < 0.25 * kl[0], kl
    if method == "teacher_distill":  # the teacher acts: every transition of the rollout is its action
        valid = rollout["valid"].reshape(-1) > 0
        assert (rollout["actions"].reshape(-1)[valid] == FAVOURED).all()


def test_categorical_kl_stays_finite_for_a_confident_student():
    """A student with a logit gap of 200 (its probabilities underflow to 0 in float32) against a teacher that
    gives those actions e^-30: the KL is finite and equals the sum computed in float64; torch's kl_divergence
    gives inf there, which the decisive-teacher test above turned into NaN weights."""
    from torch.distributions import Categorical, kl_divergence

    student = Categorical(logits=torch.tensor([[0.0, 200.0, 0.0]]))
    teacher = Categorical(logits=torch.tensor([[0.0, 30.0, 0.0]]))
    exact = Categorical(logits=torch.tensor([[0.0, 30.0, 0.0]], dtype=torch.float64))
    p = exact.probs
    expected = (
        p * (exact.logits - Categorical(logits=torch.tensor([[0.0, 200.0, 0.0]], dtype=torch.float64)).logits)
    ).sum()
    assert torch.isinf(kl_divergence(teacher, student)).all()
    for name in ("ppd_atari", "ppd_procgen", "student_distill", "teacher_distill"):
        kl = load_script(name).distill_kl(student, teacher, "forward")
        assert torch.isfinite(kl).all() and kl.item() == pytest.approx(expected.item(), rel=1e-4), name


def test_breakout_returns_are_per_game_in_training_and_evaluation(teacher_runs, capsys, monkeypatch, tmp_path):
    """Breakout (5 lives) played by a teacher that always presses FIRE, through teacher_distill.py's own
    bookkeeping: each logged charts/episodic_return is one whole game (its lives summed), exactly as the same
    envpool env gives it step by step, and the logged episodes are the game overs, not the life losses. The
    final evaluation (the teacher's, 4 games) counts games the same way and records their lengths."""
    monkeypatch.chdir(tmp_path)
    teacher = decisive_teacher(
        teacher_runs, "atari", str(tmp_path / "teachers" / "Breakout-v5__1.pt"), env_id="Breakout-v5", action_dim=4
    )
    module = load_script("teacher_distill")
    num_envs, steps = 2, 1200
    code, out, err = run_cli(
        module,
        [
            "--env-id",
            "Breakout",
            "--teacher-path",
            teacher,
            "--student",
            "smaller",
            "--num-envs",
            num_envs,
            "--total-timesteps",
            steps,
            "--eval-episodes",
            4,
            "--eval-envs",
            2,
            "--run-name",
            "run",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    logged = read_scalars(str(tmp_path / "runs" / "run"))
    # the same envs (seed 1, the scripts' preprocessing), the same actions, counted independently here
    env = envpool.make(
        "Breakout-v5",
        env_type="gymnasium",
        num_envs=num_envs,
        seed=1,
        episodic_life=True,
        reward_clip=False,
        noop_max=30,
        frame_skip=4,
        stack_num=4,
        img_height=84,
        img_width=84,
        gray_scale=True,
        repeat_action_probability=0.0,
        max_episode_steps=27_000,
    )
    env.reset()
    games, game_return, lives_lost = [], np.zeros(num_envs), 0
    for t in range(steps // num_envs):
        _, reward, term, trunc, info = env.step(np.full(num_envs, FAVOURED))
        game_return += reward
        game_over = info["terminated"].astype(bool) | trunc
        lives_lost += int((term & ~game_over).sum())
        games += [((t + 1) * num_envs, game_return[i]) for i in np.flatnonzero(game_over)]
        game_return[game_over] = 0.0
    assert len(games) >= 2 and lives_lost >= 4 * len(games)  # several lives per game
    assert [(s, v) for s, v in logged["charts/episodic_return"]] == [(s, pytest.approx(v)) for s, v in games]
    evaluation = read_json(tmp_path / "runs" / "run" / "eval.json")["teacher"]["evaluation"]
    assert len(evaluation["returns"]) == len(evaluation["lengths"]) == 4 and evaluation["capped"] == 0
    # whole games of five lives, as in training (a per-life count would give a fifth of the length)
    game_length = np.mean([length for _, length in logged["charts/episodic_length"]])
    assert np.mean(evaluation["lengths"]) == pytest.approx(game_length, rel=0.1)
    assert np.mean(evaluation["returns"]) == pytest.approx(np.mean([v for _, v in games]), rel=0.5)


@pytest.mark.parametrize("script", ["ppo_teacher_procgen", "ppd_procgen", "student_distill", "teacher_distill"])
def test_procgen_training_levels_may_not_reach_the_test_levels(script, capsys, monkeypatch, tmp_path):
    """Every Procgen evaluation plays levels [TEST_START_LEVEL, 2 * TEST_START_LEVEL); a training range that
    reaches them is refused in one line, before anything is written."""
    monkeypatch.chdir(tmp_path)
    module = load_script(script)
    test_start = module.TEST_START_LEVEL
    for start, count in ((test_start - 10, 20), (test_start + 5, 1), (0, test_start + 1)):
        code, out, err = run_cli(
            module, ["--env-id", "starpilot", "--start-level", start, "--num-levels", count], capsys, monkeypatch
        )
        assert code == 2 and err.strip().splitlines() == [
            f"error: --start-level {start} --num-levels {count} overlaps the test levels [{test_start}, "
            f"{2 * test_start}) of every evaluation; train on levels below {test_start}"
        ], err
    assert not os.listdir(tmp_path)


def first_conv_keys(state: dict) -> tuple[str, str]:
    """The checkpoint keys of the first convolution's weight in the actor's trunk and in the critic's."""
    actor_key = next(k for k in state["actor"] if k.endswith(".weight"))
    return actor_key, "critic." + actor_key[len("actor.") :]


@pytest.mark.parametrize("suite", ["atari", "procgen"])
def test_a_shared_trunk_is_one_network_for_both_heads(suite, teacher_runs):
    """The pixel teachers' default (--shared-trunk): the actor and the critic run one CNN trunk, its weights are
    counted and optimised once, one forward gives the same log-probabilities and values as the actor and the
    critic alone, and a checkpoint whose two copies of the trunk differ loads the actor's (the policy is what
    the distillation scripts and corrupted teachers read)."""
    module = load_script(f"ppo_teacher_{suite}")
    state = module.load_checkpoint(str(teacher_runs[suite][0] / "teachers" / f"{CANONICAL[suite]}__1.pt"))
    assert state["network"]["shared_trunk"] is True
    agent = module.agent_from_checkpoint(state)
    assert agent.actor[0] is agent.critic[0]
    trunk, heads = agent.actor[0], (agent.actor[1], agent.critic[1])
    assert sum(p.numel() for p in agent.parameters()) == sum(p.numel() for m in (trunk, *heads) for p in m.parameters())
    separate = module.Agent({**state["network"], "shared_trunk": False}, agent.obs_shape, agent.action_dim)
    assert separate.actor[0] is not separate.critic[0]
    assert sum(p.numel() for p in separate.parameters()) == sum(p.numel() for p in agent.parameters()) + sum(
        p.numel() for p in trunk.parameters()
    )
    frames = torch.randint(0, 256, (5, *agent.obs_shape), dtype=torch.uint8)
    actions = torch.arange(5) % agent.action_dim
    for net in (agent, separate):
        with torch.no_grad():
            _, logprob, entropy, value = net.get_action_and_value(frames, actions)
            dist = net.get_dist(frames)
            torch.testing.assert_close(logprob, dist.log_prob(actions), rtol=0, atol=0)
            torch.testing.assert_close(value, net.get_value(frames), rtol=0, atol=0)
    baseline = load_script("student_distill").agent_from_checkpoint(state)  # the baselines' own CNN agent
    assert baseline.actor[0] is baseline.critic[0]
    with torch.no_grad():
        logits, value = baseline.dist_params_and_value(frames)
        torch.testing.assert_close(logits, baseline.dist_params(frames), rtol=0, atol=0)
        torch.testing.assert_close(value, baseline.get_value(frames), rtol=0, atol=0)
    first_conv, critic_conv = first_conv_keys(state)
    state["actor"][first_conv] = state["actor"][first_conv] + 1.0  # the critic's copy stays as it was
    loaded = module.agent_from_checkpoint(state)
    torch.testing.assert_close(loaded.state_dict()[critic_conv], state["actor"][first_conv], rtol=0, atol=0)


def test_a_run_from_before_the_shared_trunk_resumes_with_a_trunk_each(capsys, monkeypatch, tmp_path):
    """A checkpoint written before --shared-trunk existed (no such flag in its args, no key in its network) holds
    two trunks: resuming it keeps them two, as they were trained, and does not merge them into one."""
    monkeypatch.chdir(tmp_path)
    module = load_script("ppo_teacher_atari")
    flags = [*TINY["atari"], *TINY_TEACHER_NET["atari"], "--eval-episodes", 0, "--run-name", "old"]
    code, _, err = run_cli(module, [*flags, "--no-shared-trunk", "--total-timesteps", 128], capsys, monkeypatch)
    assert code == 0, err
    path = tmp_path / "runs" / "old" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    del state["args"]["shared_trunk"], state["network"]["shared_trunk"]
    torch.save(state, path)
    code, out, err = run_cli(module, ["--resume", path, "--total-timesteps", 256], capsys, monkeypatch)
    assert code == 0, err
    resumed = module.load_checkpoint(str(path))
    assert resumed["global_step"] == 256 and resumed["network"]["shared_trunk"] is False
    agent = module.agent_from_checkpoint(resumed)
    assert agent.actor[0] is not agent.critic[0]
    first_conv, critic_conv = first_conv_keys(resumed)
    assert not torch.equal(resumed["actor"][first_conv], resumed["critic"][critic_conv])
