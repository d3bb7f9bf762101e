"""GAE against a plain reference, and the reset semantics of the environments it relies on."""

import numpy as np
import pytest
import torch

from conftest import SUITES, load_script

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
    as_tensor = lambda x: torch.tensor(x, dtype=torch.float64)[:, None]
    adv, ret = compute_gae(as_tensor(rewards), as_tensor(values), as_tensor(next_values), as_tensor(terminations),
                           as_tensor(dones), as_tensor(valid), GAMMA, LAM)
    expected = reference_gae([(rewards[0:3], values[0:3], None, True),
                              (rewards[4:7], values[4:7], 5.0, False),
                              (rewards[7:9], values[7:9], 2.0, False)])
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
    envs = mujoco.make_env("InvertedPendulum-v4", 2)
    obs, _ = envs.reset(seed=0)
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


def test_episode_stats_count_truncated_episodes_and_skip_reset_steps():
    stats = load_script("ppo_teacher_atari").EpisodeStats(2)
    assert stats.update(np.array([1.0, 2.0]), np.array([False, False]), np.array([True, True])) == []
    # env 1 is truncated (time limit): its episode is still reported; env 0 has a reset step (not counted).
    finished = stats.update(np.array([0.0, 3.0]), np.array([False, True]), np.array([False, True]))
    assert finished == [(5.0, 2)]
    assert stats.update(np.array([4.0, 1.0]), np.array([True, False]), np.array([True, True])) == [(5.0, 2)]
