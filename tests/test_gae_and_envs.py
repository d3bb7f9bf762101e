"""GAE against a plain reference, and the reset semantics of the environments it relies on."""

import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, SUITES, load_script

GAMMA, LAM = 0.9, 0.8


def reference_gae(episodes):
    """Plain per-episode GAE. Each episode: (rewards, values, end_value, terminated)."""
    advantages = []
    for rewards, values, end_value, terminated in episodes:
        following = list(values[1:]) + [0.0 if terminated else end_value]
        adv, last = [], 0.0
        for t in reversed(range(len(rewards))):
            delta = rewards[t] + GAMMA * following[t] - values[t]
            last = delta + GAMMA * LAM * last
            adv.insert(0, last)
        advantages.extend(adv)
    return advantages


@pytest.mark.parametrize("suite", SUITES)
def test_gae_matches_reference_with_terminations_truncations_and_reset_steps(suite):
    compute_gae = load_script(f"ppo_teacher_{suite}").compute_gae
    # One env, 9 steps: an episode terminated at t=2, a reset step at t=3 (envpool-style, not a transition),
    # an episode truncated at t=6 whose true final observation has value 5.0, then a running episode
    # bootstrapped from the value 2.0 of the observation after the rollout.
    rewards = [1.0, 0.5, 2.0, 0.0, 1.0, -1.0, 3.0, 0.5, 1.0]
    values = [0.3, 0.2, 0.9, 7.0, 0.1, 0.4, 0.8, 0.6, 0.5]
    terminations = [0, 0, 1, 0, 0, 0, 0, 0, 0]
    dones = [0, 0, 1, 0, 0, 0, 1, 0, 0]
    valid = [1, 1, 1, 0, 1, 1, 1, 1, 1]
    next_values = values[1:] + [2.0]
    next_values[6] = 5.0  # value of the truncated episode's final observation

    def as_tensor(x):
        return torch.tensor(x, dtype=torch.float64)[:, None]

    adv, ret = compute_gae(
        as_tensor(rewards),
        as_tensor(values),
        as_tensor(next_values),
        as_tensor(terminations),
        as_tensor(dones),
        as_tensor(valid),
        GAMMA,
        LAM,
    )
    expected = reference_gae(
        [
            (rewards[0:3], values[0:3], None, True),
            (rewards[4:7], values[4:7], 5.0, False),
            (rewards[7:9], values[7:9], 2.0, False),
        ]
    )
    np.testing.assert_allclose(adv[[0, 1, 2, 4, 5, 6, 7, 8], 0].numpy(), expected, rtol=1e-12)
    assert adv[3, 0] == 0.0  # the reset step carries no advantage
    np.testing.assert_allclose(ret[:, 0].numpy(), adv[:, 0].numpy() + values)


def test_envpool_reset_step_is_not_a_transition():
    """The masking in ppo_teacher_atari.py relies on this: after an episode ends, envpool's next step only
    resets (reward 0, the episode step counter does not advance, the action is ignored)."""
    atari = load_script("ppo_teacher_atari")
    envs = atari.make_env("Breakout-v5", 2, seed=3, max_episode_steps=27_000)
    envs.reset()
    seen = 0
    for _ in range(3000):
        _, _, term, trunc, info = envs.step(np.array([1, 3]))  # FIRE / LEFT
        over = term | trunc
        if over.any():
            before = info["elapsed_step"].copy()
            _, reward, term2, trunc2, info2 = envs.step(np.array([1, 1]))
            for i in np.flatnonzero(over):
                assert reward[i] == 0.0 and not term2[i] and not trunc2[i]
                assert info2["elapsed_step"][i] in (0, before[i])
                seen += 1
        if seen >= 3:
            break
    assert seen >= 3
    envs.close()


def test_gymnasium_same_step_reset_exposes_final_obs():
    """ppo_teacher_mujoco.py bootstraps time limits from info['final_obs'] with same-step autoreset."""
    mujoco = load_script("ppo_teacher_mujoco")
    envs, obs = mujoco.make_env("InvertedPendulum-v4", 2, 0, "gymnasium")
    for _ in range(200):
        obs, _, term, trunc, info = envs.step(np.ones((2, 1), np.float32) * 3.0)
        if (term | trunc).any():
            i = np.flatnonzero(term | trunc)[0]
            assert info["_final_obs"][i] and not np.allclose(info["final_obs"][i], obs[i])
            assert np.abs(obs[i]).max() <= 0.011  # the new episode's first observation (init noise 0.01)
            break
    else:
        raise AssertionError("no episode ended")
    envs.close()


PAPER_MUJOCO = ("Ant-v4", "HalfCheetah-v4", "Hopper-v4", "Humanoid-v4", "Swimmer-v4")


@pytest.mark.parametrize("env_id", PAPER_MUJOCO)
def test_envpool_mujoco_has_the_gymnasium_v4_spaces(env_id):
    mujoco = load_script("ppo_teacher_mujoco")
    pool, pool_obs = mujoco.make_env(env_id, 2, 0, "envpool")
    gym_envs, gym_obs = mujoco.make_env(env_id, 2, 0, "gymnasium")
    assert pool_obs.shape == gym_obs.shape
    for a, b in (
        (pool.single_observation_space, gym_envs.single_observation_space),
        (pool.single_action_space, gym_envs.single_action_space),
    ):
        assert a.shape == b.shape and np.allclose(a.low, b.low) and np.allclose(a.high, b.high)  # float64/32
    pool.close()
    gym_envs.close()


def always_zero_entries(envs, steps: int = 300) -> np.ndarray:
    """The observation entries that stay exactly 0 over random actions (episodes end and restart on the way)."""
    space = getattr(envs, "single_action_space", None)  # the baselines' VecEnv keeps the bounds itself
    low, high = (space.low, space.high) if space is not None else (envs.low, envs.high)
    rng, nonzero = np.random.default_rng(0), None
    obs = envs.reset()
    obs = obs[0] if isinstance(obs, tuple) else obs
    for _ in range(steps):
        nonzero = (obs != 0).any(0) if nonzero is None else nonzero | (obs != 0).any(0)
        obs = envs.step(rng.uniform(low, high, (obs.shape[0], len(low))))[0]
    envs.close()
    return np.flatnonzero(~nonzero)


@pytest.mark.parametrize("env_id", PAPER_MUJOCO)
def test_gymnasium_gives_the_observation_the_policies_trained_on(env_id):
    """Policies train on envpool and are evaluated on gymnasium: every entry envpool leaves at zero (Humanoid's
    84 contact forces, which gymnasium's own v4 fills) is zero in the scripts' gymnasium envs too (the teachers'
    and PPD's make_env, the baselines' evaluation env), and no other entry is."""
    mujoco, baseline = load_script("ppo_teacher_mujoco"), load_script("student_distill")
    expected = always_zero_entries(mujoco.make_env(env_id, 4, 0, "envpool")[0])
    assert np.array_equal(always_zero_entries(mujoco.make_env(env_id, 4, 0, "gymnasium")[0]), expected)
    evaluation = baseline.VecEnv("mujoco", env_id, 4, 0, baseline.Args(env_id=env_id), training=False)
    assert np.array_equal(always_zero_entries(evaluation), expected)
    unmasked = gym.make_vec(env_id, num_envs=4, vectorization_mode="sync")  # gymnasium's own v4 task
    unmasked.reset(seed=0)
    own = always_zero_entries(unmasked)
    if env_id == "Humanoid-v4":
        contact_forces, masked = np.arange(292, 376), np.setdiff1d(expected, own)
        assert np.isin(contact_forces, expected).all() and np.isin(masked, contact_forces).all() and len(masked) > 40
    else:
        assert np.array_equal(own, expected)


def hopper_unhealthy(obs):
    """Gymnasium's Hopper-v4 termination: z <= 0.7, |angle| >= 0.2, or a state entry outside (-100, 100)."""
    return obs[..., 0] <= 0.7 or abs(obs[..., 1]) >= 0.2 or np.abs(obs[..., 1:]).max() >= 100


# Gymnasium's v4 reward (from the step's action and info) and termination (from the observation, whose first entry
# is the torso's height) for the envs the teachers train on envpool; the last field: random actions end enough
# episodes to compare mean lengths (a random Ant rarely leaves its healthy height range).
V4_RULES = {
    "Hopper-v4": (lambda a, info: 1.0 + info["x_velocity"] - 1e-3 * (a**2).sum(1), hopper_unhealthy, True),
    "Ant-v4": (
        lambda a, info: 1.0 + info["x_velocity"] - 0.5 * (a**2).sum(1),
        lambda obs: not (np.isfinite(obs).all() and 0.2 <= obs[0] <= 1.0),
        False,
    ),
    "Humanoid-v4": (
        lambda a, info: 5.0 + 1.25 * info["x_velocity"] - 0.1 * (a**2).sum(1),
        lambda obs: not 1.0 < obs[0] < 2.0,
        True,
    ),
}


@pytest.mark.parametrize("env_id", list(V4_RULES))
def test_envpool_reward_terms_and_termination_match_gymnasium(env_id):
    """Random actions on both backends: every step's reward is gymnasium v4's formula, an episode ends exactly
    when the v4 health rule says so (checked on every step, ended or not), and where random actions end enough
    episodes, the mean episode length agrees within noise."""
    mujoco = load_script("ppo_teacher_mujoco")
    reward_of, unhealthy, compare_lengths = V4_RULES[env_id]
    lengths = {}
    for backend in ("envpool", "gymnasium"):
        envs, _ = mujoco.make_env(env_id, 8, 0, backend)
        low, high = envs.single_action_space.low, envs.single_action_space.high
        rng = np.random.default_rng(0)
        steps, over, lengths[backend] = np.zeros(8, int), np.zeros(8, bool), []
        for _ in range(400):
            valid = ~over if backend == "envpool" else np.ones(8, bool)  # envpool's reset step
            action = rng.uniform(low, high, (8, len(low)))
            obs, reward, term, trunc, info = envs.step(action)
            over = term | trunc
            running = valid & ~over  # gymnasium's info of an ended env is the new episode's
            np.testing.assert_allclose(reward[running], reward_of(action, info)[running], rtol=1e-5, atol=1e-5)
            for i in np.flatnonzero(valid & ~trunc):
                final = info["final_obs"][i] if backend == "gymnasium" and term[i] else obs[i]
                assert unhealthy(final) == term[i], (backend, i, final[:2])
            steps += valid
            for i in np.flatnonzero(term):
                lengths[backend].append(steps[i])
                steps[i] = 0
        envs.close()
    if compare_lengths:
        a, b = (np.array(lengths[k], float) for k in ("envpool", "gymnasium"))
        assert len(a) > 100 and len(b) > 100
        assert abs(a.mean() - b.mean()) < 3 * np.sqrt(a.var() / len(a) + b.var() / len(b)), (a.mean(), b.mean())


def test_envpool_hopper_gives_the_shipped_teacher_its_gymnasium_return():
    """A fixed policy (the shipped Hopper teacher, deterministic): same episode lengths (1000, truncated) and
    the same mean return within noise on both backends."""
    mujoco = load_script("ppo_teacher_mujoco")
    state = mujoco.load_checkpoint(os.path.join(ROOT, "teachers", "Hopper-v4__1.pt"))
    agent = mujoco.agent_from_checkpoint(state)
    norm = mujoco.ObsNormalizer(tuple(state["obs_shape"]), 10.0)
    norm.rms.load_state_dict(state["obs_rms"])
    returns = {}
    for backend in ("envpool", "gymnasium"):
        envs, obs = mujoco.make_env("Hopper-v4", 6, 5, backend)
        total, length, done = np.zeros(6), np.zeros(6, int), np.zeros(6, bool)
        while not done.all():
            with torch.inference_mode():
                action = agent.actor_mean(torch.as_tensor(norm(obs, update=False))).numpy()
            obs, reward, term, trunc, _ = envs.step(np.clip(action, -1, 1))
            total += reward * ~done
            length += ~done
            assert not (term & ~done).any()  # this teacher never falls
            done |= trunc
        envs.close()
        assert (length == 1000).all()
        returns[backend] = total
    a, b = returns["envpool"], returns["gymnasium"]
    assert a.mean() > 3000
    assert abs(a.mean() - b.mean()) < 3 * np.sqrt(a.var() / len(a) + b.var() / len(b)), (a, b)


def test_episode_stats_count_truncated_episodes_and_skip_reset_steps():
    stats = load_script("ppo_teacher_atari").EpisodeStats(2)
    assert stats.update(np.array([1.0, 2.0]), np.array([False, False]), np.array([True, True])) == []
    # env 1 is truncated (time limit): its episode is still reported; env 0 has a reset step (not counted).
    finished = stats.update(np.array([0.0, 3.0]), np.array([False, True]), np.array([False, True]))
    assert finished == [(5.0, 2)]
    assert stats.update(np.array([4.0, 1.0]), np.array([True, False]), np.array([True, True])) == [(5.0, 2)]
