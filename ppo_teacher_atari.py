"""PPO teacher for Atari (envpool), as trained in the PPD paper (A.2, Table 3).

Single-file, CleanRL-style: every part of the algorithm is in this file. The distillation scripts
(ppd_atari.py, ...) copy it section by section; keep the section order and names in step with them.

    python ppo_teacher_atari.py --env-id Pong
"""

import contextlib
import ctypes
import dataclasses
import difflib
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.distributions import Categorical
from torch.utils.tensorboard import SummaryWriter

with contextlib.redirect_stderr(io.StringIO()):  # envpool imports the old gym, which prints a banner
    import envpool

# No argument validation in torch.distributions: each check (of a distribution's parameters, of every log_prob's
# value) is a GPU-to-CPU wait, several per env step and per minibatch.
torch.distributions.Distribution.set_default_validate_args(False)

SCRIPT = os.path.basename(__file__)  # this file's own name: a copy records itself, never the original
METHOD = "ppo"
SUITE = "atari"
CHECKPOINT_VERSION = 1
# The paper's 11 games (A.2) with random and human scores for human-normalised scores (Badia et al., 2020).
HUMAN_RANDOM_SCORES = {
    "Atlantis-v5": (12850.0, 29028.1),
    "BeamRider-v5": (363.9, 16926.5),
    "CrazyClimber-v5": (10780.5, 35829.4),
    "DemonAttack-v5": (152.1, 1971.0),
    "Enduro-v5": (0.0, 860.5),
    "Freeway-v5": (0.0, 29.6),
    "MsPacman-v5": (307.3, 6951.6),
    "Pong-v5": (-20.7, 14.6),
    "Qbert-v5": (163.9, 13455.0),
    "Seaquest-v5": (68.4, 42054.7),
    "Zaxxon-v5": (32.5, 9173.3),
    "Breakout-v5": (1.7, 30.5),
    "SpaceInvaders-v5": (148.0, 1668.7),
}
PAPER_ENVS = (
    "Atlantis-v5",
    "BeamRider-v5",
    "CrazyClimber-v5",
    "DemonAttack-v5",
    "Enduro-v5",
    "Freeway-v5",
    "MsPacman-v5",
    "Pong-v5",
    "Qbert-v5",
    "Seaquest-v5",
    "Zaxxon-v5",
)


@dataclass
class Args:
    # The environment
    env_id: str = "Pong-v5"
    """envpool Atari game ('-v5' may be left out); the paper's: Atlantis, BeamRider, CrazyClimber, DemonAttack,
    Enduro, Freeway, MsPacman, Pong, Qbert, Seaquest, Zaxxon"""
    seed: int = 1
    """seed of the experiment (torch, numpy, random and the environments)"""
    max_episode_steps: int = 27_000
    """episodes are truncated after this many agent steps (envpool's default: 27,000 = 30 minutes of play)"""

    # The paper's hyperparameters (A.2, Table 3; A.3 for distillation)
    total_timesteps: int = 10_000_000
    """total environment steps (agent steps, 4 frames each) of training (paper: 10M)"""
    num_envs: int = 18
    """number of parallel environments"""
    num_steps: int = 256
    """steps per environment per rollout (Table 3)"""
    minibatch_size: int = 512
    """samples per minibatch (the paper's batch_size); the last minibatch of a rollout may be smaller"""
    update_epochs: int = 4
    """passes over the rollout per update"""
    learning_rate: float = 3e-4
    """Adam learning rate"""
    anneal_lr: bool = False
    """linearly anneal the learning rate to 0 (the paper keeps it constant)"""
    gamma: float = 0.995
    """discount factor"""
    gae_lambda: float = 0.9
    """GAE lambda"""
    clip_coef: float = 0.2
    """PPO clip range epsilon"""
    ent_coef: float = 0.01
    """entropy coefficient (Table 3)"""
    vf_coef: float = 0.5
    """value-loss coefficient"""
    max_grad_norm: float = 0.5
    """gradient clipping norm"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    reward_clip: float = 10.0
    """clip normalised rewards to [-reward_clip, reward_clip]"""

    # The network (A.2)
    arch: Literal["impala", "nature"] = "impala"
    """network of the actor and of the critic: IMPALA-CNN or Nature-CNN"""
    channels: tuple[int, ...] = (16, 32, 32)
    """conv filters of the three stages (paper A.2: IMPALA {16, 32, 32})"""
    fc_size: int = 256
    """units of the fully connected layer after the convolutions"""
    shared_trunk: bool = True
    """one CNN trunk for the actor and the critic (SB3's CnnPolicy, CleanRL); --no-shared-trunk: one each, the
    paper's text (A.2), whose actor trunk died within 2.8M steps of Pong here (docs/teachers.md)"""

    # Evaluation (A.3)
    eval_episodes: int = 50
    """full-game episodes of the final evaluation (paper: 50, deterministic actions); 0 skips it"""
    eval_envs: int = 10
    """parallel environments of the evaluation"""
    eval_every: int = 0
    """evaluate the agent every this many steps and log eval/episodic_return (0: off)"""
    eval_every_episodes: int = 10
    """episodes of each --eval-every evaluation"""

    # Run folder, checkpoints and resume
    exp_name: str = SCRIPT[: -len(".py")]
    """the name of this experiment (part of the default run name): this script's file name, as in CleanRL"""
    run_name: Annotated[
        Optional[str],
        tyro.conf.arg(metavar="STR", help_behavior_hint="(default: {env_id}__{exp_name}__{seed}__{unix time})"),
    ] = None
    """run folder name under runs_dir"""
    runs_dir: str = "runs"
    """folder of the run folders, under the current folder (as CleanRL's), wherever the script lives"""
    resume: Annotated[Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: none: a new run)")] = (
        None
    )
    """continue the run of this checkpoint.pt with its own flags (give --total-timesteps to extend it)"""
    checkpoint_every: int = 20
    """write runs/{run_name}/checkpoint.pt every this many updates (and at the end)"""
    checkpoint_minutes: float = 10.0
    """also write it when this many minutes have passed since the last one (a SIGKILL loses at most this much)"""
    teachers_dir: str = "teachers"
    """the final policy is also written to {teachers_dir}/{env_id}__{seed}.pt, where the distillation scripts look"""
    overwrite_teacher: bool = False
    """replace an existing {teachers_dir}/{env_id}__{seed}.pt (without it, the run refuses to start)"""

    # Experiment tracking (CleanRL's flags)
    track: bool = False
    """log the run to Weights & Biases: the args as its config, the tensorboard scalars synced (needs wandb)"""
    wandb_project_name: str = "ppd"
    """the Weights & Biases project of --track"""
    wandb_entity: Annotated[
        Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: your W&B default entity)")
    ] = None
    """the Weights & Biases entity (team or user) of --track"""

    # Hardware
    cuda: bool = True
    """use CUDA when it is available"""
    torch_deterministic: bool = True
    """cuDNN's deterministic kernels; --no-torch-deterministic lets cuDNN time and keep its fastest (benchmark)"""
    bf16: bool = False
    """bfloat16 autocast for the networks' forward and backward passes in training (distributions, KL and losses
    stay float32; evaluation runs float32): for the larger CNN students on a GPU"""


class UsageError(Exception):
    """Bad input: reported as one line, without a traceback."""


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
def match_env_id(env_id: str, tables: dict) -> tuple[str, str]:
    """(suite, canonical id) of an env id as people type it, by one rule in every suite: any case, with or without
    a prefix (ALE/, procgen-, procgen:) or an Atari variant (NoFrameskip, Deterministic), with no version or one
    that names the suite's env. tables: suite -> its lower-case names -> canonical ids, the versions accepted, why
    others are refused, and a line listing the ids."""
    typed = env_id.strip().lower()
    for prefix in ("ale/", "procgen:", "procgen-"):
        typed = typed.removeprefix(prefix)
    name, _, version = typed.partition("-v")
    name = name.removesuffix("noframeskip").removesuffix("deterministic")
    for suite, table in tables.items():
        if name in table["ids"] and version in table["versions"]:
            return suite, table["ids"][name]
        if name in table["ids"]:
            raise UsageError(
                f"env id '{env_id}': this project runs {table['ids'][name]}, not -v{version} ({table['why']})"
            )
    names = {key: canonical for table in tables.values() for key, canonical in table["ids"].items()}
    guess = difflib.get_close_matches(name, list(names), n=1)
    hint = f"did you mean {names[guess[0]]}? " if guess else ""
    raise UsageError(f"unknown env id '{env_id}'; {hint}{'; '.join(table['known'] for table in tables.values())}")


def atari_env_table() -> dict:
    """envpool's Atari games, whose only version is v5 (gym's v0 and v4 and ALE/...-v5 name the same game)."""
    ids = sorted(k for k, spec in envpool.registration.registry.specs.items() if spec[0] == "envpool.atari")
    return {
        "ids": {k.removesuffix("-v5").lower(): k for k in ids},
        "versions": ("", "0", "4", "5"),
        "why": "envpool has v5 only",
        "known": f"envpool's {len(ids)} Atari games, e.g. Pong-v5, Breakout-v5",
    }


def canonical_env_id(env_id: str) -> str:
    return match_env_id(env_id, {"atari": atari_env_table()})[1]


def resolve_args(args: Args) -> Args:
    """Fill the per-env defaults of Table 3 and reject impossible values before any long work."""
    args.env_id = canonical_env_id(args.env_id)
    positive = [
        "total_timesteps",
        "learning_rate",
        "num_envs",
        "num_steps",
        "minibatch_size",
        "update_epochs",
        "clip_coef",
        "max_grad_norm",
        "max_episode_steps",
        "fc_size",
        "reward_clip",
        "checkpoint_every",
        "checkpoint_minutes",
        "eval_envs",
    ]
    for name in positive:
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ["ent_coef", "vf_coef", "eval_episodes", "eval_every", "eval_every_episodes"]:
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        raise UsageError(f"--gamma must be in (0, 1] and --gae-lambda in [0, 1], got {args.gamma}, {args.gae_lambda}")
    if len(args.channels) != 3 or min(args.channels) <= 0:
        raise UsageError(f"--channels must be three positive filter counts, got {args.channels}")
    batch_size = args.num_envs * args.num_steps
    if args.minibatch_size > batch_size:
        raise UsageError(
            f"--minibatch-size {args.minibatch_size} is larger than the rollout batch "
            f"(num_envs x num_steps = {batch_size})"
        )
    return args


def parse_args() -> Args:
    """tyro's parser; a flag it refuses (a value outside its choices, a malformed number) is one line."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(Args)
    except SystemExit as e:
        if e.code in (0, None):
            raise
        lines = [line.strip(" │╭╮╰╯─") for line in captured.getvalue().splitlines()[1:]]
        raise UsageError(" ".join(line for line in lines if line and not line.startswith("For full helptext")))


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------
def make_env(env_id: str, num_envs: int, seed: int, max_episode_steps: int):
    """envpool Atari with the standard preprocessing (A.2): frame skip 4, up to 30 no-ops, 84x84 grayscale,
    4 stacked frames, unclipped rewards; an episode ends on a life loss (A.2), and its reset step then gives the
    no-ops and FIRE of a new life without resetting the game: info["terminated"] is the real game over.

    envpool resets an env on the step *after* its episode ended: that step returns the new episode's first
    observation with reward 0 and ignores the action, so it is not a transition (see `valid` in train)."""
    return envpool.make(
        env_id,
        env_type="gymnasium",
        num_envs=num_envs,
        seed=seed,
        episodic_life=True,
        reward_clip=False,
        noop_max=30,
        frame_skip=4,
        stack_num=4,
        img_height=84,
        img_width=84,
        gray_scale=True,
        repeat_action_probability=0.0,
        max_episode_steps=max_episode_steps,
    )


class RunningMeanStd:
    """Running mean and variance (parallel algorithm), float64, as SB3's VecNormalize keeps them."""

    def __init__(self, shape=()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        batch_mean, batch_var, batch_count = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": torch.as_tensor(self.mean), "var": torch.as_tensor(self.var), "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var = state["mean"].numpy().copy(), state["var"].numpy().copy()
        self.count = float(state["count"])


class RewardNormalizer:
    """Scales rewards by a running std of the discounted return (SB3 VecNormalize, gymnasium NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float, clip: float):
        self.rms, self.gamma, self.clip = RunningMeanStd(), gamma, clip
        self.returns = np.zeros(num_envs, np.float64)

    def __call__(self, rewards: np.ndarray, ended: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns[valid])
        scaled = np.clip(rewards / np.sqrt(self.rms.var + 1e-8), -self.clip, self.clip)
        self.returns[ended] = 0.0
        return scaled.astype(np.float32)


class EvalProgress:
    """A line now and then while an evaluation runs longer than a few seconds (a teacher's 50 Atari games take
    minutes): episodes done, time spent, ETA."""

    FIRST, EVERY = 5.0, 30.0  # seconds before the first line, and between lines

    def __init__(self, episodes: int):
        self.episodes, self.start = episodes, time.time()
        self.next = self.start + self.FIRST

    def tick(self, done: int) -> None:
        now = time.time()
        if now < self.next:
            return
        self.next = now + self.EVERY
        spent = now - self.start
        eta = f"ETA {spent / done * (self.episodes - done) / 60:.1f} min" if done else "ETA after its first episode"
        print(f"evaluating: {done}/{self.episodes} episodes in {spent / 60:.1f} min, {eta}", flush=True)


class EpisodeStats:
    """Raw returns and lengths of finished episodes, terminated or truncated alike."""

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, np.float64)
        self.lengths = np.zeros(num_envs, np.int64)

    def update(self, raw_rewards: np.ndarray, episode_over: np.ndarray, valid: np.ndarray) -> list[tuple[float, int]]:
        self.returns += raw_rewards * valid
        self.lengths += valid
        finished = [(float(self.returns[i]), int(self.lengths[i])) for i in np.flatnonzero(episode_over)]
        self.returns[episode_over] = 0.0
        self.lengths[episode_over] = 0
        return finished


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------
def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = layer_init(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv1 = layer_init(nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


def impala_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv 3x3 -> max-pool 3, stride 2 -> two residual blocks (Espeholt et al., 2018)."""
    # orthogonal, gain sqrt(2), as every layer here and in the paper's library (SB3): PyTorch's default init gives
    # ~2.5x smaller weights, and a teacher corruption sigma (section 3) is measured against their scale
    return nn.Sequential(
        layer_init(nn.Conv2d(in_channels, out_channels, 3, padding=1)),
        nn.MaxPool2d(3, stride=2, padding=1),
        ResidualBlock(out_channels),
        ResidualBlock(out_channels),
    )


def make_trunk(spec: dict, obs_shape) -> nn.Sequential:
    """Pixels (C, H, W) in [0, 255] -> features of size spec['fc_size']."""
    in_channels = obs_shape[0]
    if spec["arch"] == "impala":
        stages = []
        for channels in spec["channels"]:
            stages.append(impala_stage(in_channels, channels))
            in_channels = channels
        convs = nn.Sequential(*stages, nn.Flatten(), nn.ReLU())
    else:  # Nature-CNN (Mnih et al., 2015): 8x8 stride 4, 4x4 stride 2, 3x3 stride 1
        c1, c2, c3 = spec["channels"]
        convs = nn.Sequential(
            layer_init(nn.Conv2d(in_channels, c1, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(c1, c2, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(c2, c3, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )
    with torch.no_grad():
        flat = convs(torch.zeros(1, *obs_shape)).shape[1]
    return nn.Sequential(convs, layer_init(nn.Linear(flat, spec["fc_size"])), nn.ReLU())


def network_spec(arch: str, channels, fc_size: int, shared_trunk: bool = False) -> dict:
    return {
        "arch": arch,
        "channels": [int(c) for c in channels],
        "fc_size": int(fc_size),
        "shared_trunk": bool(shared_trunk),
    }


class Agent(nn.Module):
    """Categorical actor and critic heads on CNN trunks: one trunk for both when spec['shared_trunk'] (a checkpoint
    then holds it under actor.0 and critic.0 alike), else one each (specs written before the key: one each)."""

    def __init__(self, spec: dict, obs_shape, action_dim: int):
        super().__init__()
        self.spec, self.obs_shape, self.action_dim = spec, tuple(int(d) for d in obs_shape), int(action_dim)
        trunk = make_trunk(spec, obs_shape)
        self.actor = nn.Sequential(trunk, layer_init(nn.Linear(spec["fc_size"], action_dim), std=0.01))
        self.critic = nn.Sequential(
            trunk if spec.get("shared_trunk") else make_trunk(spec, obs_shape),
            layer_init(nn.Linear(spec["fc_size"], 1), std=1.0),
        )
        # channels_last: the layout in which oneDNN's CPU convolutions (and cuDNN's) run fastest; docs/throughput.md
        self.to(memory_format=torch.channels_last)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if self.critic[0] is self.actor[0]:  # one trunk, two names: the actor's copy is the one loaded
            state_dict = {
                **state_dict,
                **{"critic." + k[len("actor.") :]: v for k, v in state_dict.items() if k.startswith("actor.0.")},
            }
        return super().load_state_dict(state_dict, strict, assign)

    def policy_params(self) -> int:
        """Trunk + action head, as Table 4 counts them (no critic)."""
        return sum(p.numel() for p in self.actor.parameters())

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 frames (N, C, H, W) -> floats in [0, 1], channels_last like the weights."""
        return (x.float() / 255.0).contiguous(memory_format=torch.channels_last)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.pixels(x)).squeeze(-1).float()  # float32 under --bf16's autocast too

    def get_dist(self, x: torch.Tensor) -> Categorical:
        return Categorical(logits=self.actor(self.pixels(x)).float())

    def act(self, x: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """An action from the policy alone (evaluation): no critic forward."""
        dist = self.get_dist(x)
        return dist.probs.argmax(-1) if deterministic else dist.sample()

    def get_dist_and_value(self, x: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        """Policy and value in one pass: the pixels are converted once, and a shared trunk runs once."""
        pixels = self.pixels(x)
        features = self.actor[0](pixels)
        critic_features = features if self.critic[0] is self.actor[0] else self.critic[0](pixels)
        return Categorical(logits=self.actor[1](features).float()), self.critic[1](critic_features).squeeze(-1).float()

    def get_action_and_value(self, x, action=None, deterministic: bool = False):
        dist, value = self.get_dist_and_value(x)
        if action is None:
            action = dist.probs.argmax(-1) if deterministic else dist.sample()
        return action, dist.log_prob(action), dist.entropy(), value


# ---------------------------------------------------------------------------------------------
# GAE
# ---------------------------------------------------------------------------------------------
def compute_gae(rewards, values, next_values, terminations, dones, valid, gamma: float, gae_lambda: float):
    """Generalised advantage estimation over a (num_steps, num_envs) rollout.

    next_values[t] is the value of the observation that followed step t: the true final observation when an
    episode was truncated there, so time limits are bootstrapped; terminations cut the bootstrap; dones
    (terminated or truncated) cut the recursion; invalid steps (an env's reset step) get no advantage.
    """
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminations[t]) - values[t]
        last = (delta + gamma * gae_lambda * (1.0 - dones[t]) * last) * valid[t]
        advantages[t] = last
    return advantages, advantages + values


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def ppo_loss(newlogprob, oldlogprob, advantages, entropy, newvalue, returns, args: Args):
    """PPO-clip (Eq. 2, L_PPO) - ent_coef * entropy + vf_coef * value loss; returns (loss, ratio, stats)."""
    logratio = newlogprob - oldlogprob
    ratio = logratio.exp()
    if args.norm_adv and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(
        -advantages * ratio, -advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
    ).mean()
    v_loss = ((newvalue - returns) ** 2).mean()  # SB3's MSE value loss, which the paper's hyperparameters assume
    entropy_loss = entropy.mean()
    loss = pg_loss - args.ent_coef * entropy_loss + args.vf_coef * v_loss
    with torch.no_grad():
        # tensors, read once per update: an .item() per minibatch would make a GPU wait for the CPU each time
        stats = {
            "policy_loss": pg_loss.detach(),
            "value_loss": v_loss.detach(),
            "entropy": entropy_loss.detach(),
            "old_approx_kl": (-logratio).mean(),
            "approx_kl": ((ratio - 1) - logratio).mean(),
            "clipfrac": ((ratio - 1.0).abs() > args.clip_coef).float().mean(),
        }
    return loss, ratio, stats


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def human_normalized(env_id: str, score: float) -> Optional[float]:
    if env_id not in HUMAN_RANDOM_SCORES:
        return None
    random_score, human_score = HUMAN_RANDOM_SCORES[env_id]
    return (score - random_score) / (human_score - random_score)


def describe(evaluation: dict) -> str:
    """'50 episodes, mean return 3361.68': one form for every evaluation a script prints."""
    episodes = evaluation["episodes"]
    return f"{episodes} episode{'s' * (episodes != 1)}, mean return {evaluation['mean']:.2f}"


def evaluate(
    agent: Agent,
    args: Args,
    obs_norm,
    episodes: int,
    num_envs: int,
    seed: int,
    device,
    deterministic: Optional[bool] = None,
    test_levels: bool = True,
) -> dict:
    """Paper A.3: full games, deterministic actions, raw scores. Played as training plays (a life loss ends an
    episode, and the reset step relaunches the next life with no-ops and FIRE, which a deterministic policy may
    never have learned to press), scored per game (the sum over its lives, ended by the real game over or the
    step limit). Each env plays a fixed quota of games, so short games are not over-represented.
    One signature in every script (tools/evaluate.py calls it so): deterministic None is the suite's protocol,
    test_levels picks Procgen's level set (the other suites have none)."""
    deterministic = True if deterministic is None else deterministic
    num_envs = min(num_envs, episodes)
    quotas = np.array([episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)])
    # Its own RNG stream: sampled actions repeat for a seed (tools/evaluate.py reproduces them), and an
    # evaluation during training leaves the training RNG where it was.
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        envs = make_env(args.env_id, num_envs, seed, args.max_episode_steps)
        obs, _ = envs.reset()
        stats, counts, returns, lengths, capped = EpisodeStats(num_envs), np.zeros(num_envs, np.int64), [], [], 0
        done = np.zeros(num_envs, bool)
        progress = EvalProgress(episodes)
        while (counts < quotas).any():
            STOP.check()
            progress.tick(int(counts.sum()))
            with torch.inference_mode():
                x = torch.as_tensor(obs, device=device)
                action = agent.act(x, deterministic).cpu().numpy()
            valid = ~done  # the step after a life loss or a game's end only resets (no-ops, FIRE)
            obs, reward, term, trunc, info = envs.step(action)
            done = term | trunc
            game_over = info["terminated"].astype(bool) | trunc
            for i, (ret, length) in zip(np.flatnonzero(game_over), stats.update(reward, game_over, valid)):
                if counts[i] < quotas[i]:
                    returns.append(ret)
                    lengths.append(length)
                    capped += int(trunc[i])
                    counts[i] += 1
        envs.close()
    mean = float(np.mean(returns))
    # lengths: agent steps per game; capped: games ended by --max-episode-steps, not by a game over
    return {
        "episodes": episodes,
        "deterministic": deterministic,
        "levels": None,
        "returns": returns,
        "mean": mean,
        "std": float(np.std(returns)),
        "human_normalized": human_normalized(args.env_id, mean),
        "lengths": lengths,
        "capped": capped,
    }


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def keep_freed_memory() -> None:
    """glibc hands every freed block above its mmap threshold (32 MB at most) back to the kernel, and a CNN update
    allocates activations that size by the dozen: the page faults of the next allocation cost as much as a
    third of a CPU run's time, as kernel time. Blocks up to 1 GiB from the heap, and freed heap memory kept for
    the next update, measured 1.2x (Nature-CNN) to 1.4x (IMPALA) faster forward + backward passes here
    (docs/throughput.md). A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD


def choose_device(args: Args) -> torch.device:
    """CUDA when it is there and --cuda; cuDNN's deterministic kernels with --torch-deterministic, else the fastest it
    finds (benchmark: each convolution shape timed once)."""
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.backends.cudnn.benchmark = not args.torch_deterministic
    return torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")


def device_line(device: torch.device) -> str:
    """The device for the run's opening lines; where the CPU build of torch leaves an NVIDIA GPU unused, the fix."""
    if device.type == "cuda":
        return (
            f"device: {device} ({torch.cuda.get_device_name(device)}), torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}"
        )
    line = f"device: cpu ({cpu_name()}, {torch.get_num_threads()} torch threads), torch {torch.__version__}"
    if torch.cuda.is_available():
        return line + " (--no-cuda: a GPU is visible, unused)"
    if torch.version.cuda is None and os.path.exists("/proc/driver/nvidia/version"):
        return line + (
            "; this machine has an NVIDIA driver but torch is the CPU build: install the CUDA build with "
            f"pip install torch=={torch.__version__.split('+')[0]} --index-url "
            "https://download.pytorch.org/whl/cuXXX (XXX: the CUDA version PyTorch's selector gives)"
        )
    return line


def mixed_precision(args: Args, device: torch.device):
    """--bf16: the networks' matrix products and convolutions in bfloat16 (autocast), so their backward too; the
    agents return float32 outputs, so the distributions, log-softmax, KL and losses stay float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)


def start_run(args: Args, given: Optional[set]) -> tuple:
    """(args resolved, the checkpoint's state to resume or None, run folder, number of updates, device, and the
    finished run's eval.json when there is nothing left to do, else None), after every check that can refuse the run.
    given: the flags named on the command line (default: those that differ from Args' defaults)."""
    if given is None:
        defaults = Args()
        given = {f.name for f in dataclasses.fields(Args) if getattr(args, f.name) != getattr(defaults, f.name)}
    resume_state = None
    if args.resume:
        args, resume_state = resume_args(args, given)
    args = resolve_args(args)
    device = choose_device(args)
    if resume_state is not None:
        check_resume_flags(args, resume_state, given)
        if resume_state.get("device", device.type) != device.type:
            raise UsageError(
                f"{args.resume} trained on {resume_state['device']}; resuming it on {device.type} would "
                f"change its random streams: resume it on {resume_state['device']}"
            )
    if args.run_name is None:
        args.run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = os.path.join(args.runs_dir, args.run_name)
    checkpoint_path = os.path.join(run_dir, "checkpoint.pt")
    if resume_state is None and any(os.path.exists(os.path.join(run_dir, f)) for f in ("checkpoint.pt", "eval.json")):
        raise UsageError(
            f"{run_dir} already holds a run; resume it with --resume {checkpoint_path}, or choose another --run-name"
        )
    batch_size = args.num_envs * args.num_steps
    num_updates = args.total_timesteps // batch_size
    if num_updates < 1:
        raise UsageError(f"--total-timesteps {args.total_timesteps} is less than one rollout ({batch_size} steps)")
    if resume_state is not None and num_updates < resume_state["update"]:
        raise UsageError(
            f"--total-timesteps {args.total_timesteps} is below step {resume_state['global_step']}, where "
            f"{args.resume} stands; give at least that many to resume it"
        )
    if (
        resume_state is not None
        and num_updates == resume_state["update"]
        and os.path.isfile(os.path.join(run_dir, "eval.json"))
    ):
        print(
            f"{run_dir} is finished at step {resume_state['global_step']} and its eval.json is written; nothing "
            f"to do (give a larger --total-timesteps to train on)"
        )
        with open(os.path.join(run_dir, "eval.json")) as f:
            return args, resume_state, run_dir, num_updates, device, json.load(f)
    return args, resume_state, run_dir, num_updates, device, None


def train(args: Args, given: Optional[set] = None) -> dict:
    """given: the flags named on the command line (default: those that differ from Args' defaults)."""
    args, resume_state, run_dir, num_updates, device, finished = start_run(args, given)
    if finished is not None:
        return finished
    checkpoint_path = os.path.join(run_dir, "checkpoint.pt")
    start_update = resume_state["update"] + 1 if resume_state else 1
    batch_size = args.num_envs * args.num_steps
    teacher_path = os.path.join(args.teachers_dir, f"{args.env_id}__{args.seed}.pt")
    if os.path.exists(teacher_path) and not args.overwrite_teacher and not wrote_it_itself(run_dir, teacher_path):
        raise UsageError(
            f"{teacher_path} exists and this run would replace it; choose another --seed or "
            f"--teachers-dir, or pass --overwrite-teacher"
        )
    print(f"run folder: {run_dir}")
    print(device_line(device))
    if num_updates * batch_size != args.total_timesteps:
        print(
            f"--total-timesteps {args.total_timesteps} is not a multiple of the rollout ({args.num_envs} envs x "
            f"{args.num_steps} steps): training {num_updates * batch_size} steps"
        )
    STOP.checkpoint = checkpoint_path

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    keep_freed_memory()

    envs = make_env(args.env_id, args.num_envs, args.seed + start_update - 1, args.max_episode_steps)
    obs_shape = envs.observation_space.shape
    action_dim = envs.action_space.n
    spec = network_spec(args.arch, args.channels, args.fc_size, args.shared_trunk)
    agent = Agent(spec, obs_shape, action_dim).to(device)
    # fused: one kernel for the whole parameter update (same maths; measured faster on CPU, docs/throughput.md)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    obs_norm = None  # pixels are scaled inside the network
    reward_norm = RewardNormalizer(args.num_envs, args.gamma, args.reward_clip)
    global_step = 0
    if resume_state is not None:
        agent.load_state_dict({**resume_state["actor"], **resume_state["critic"]})
        optimizer.load_state_dict(resume_state["optimizer"])
        reward_norm.rms.load_state_dict(resume_state["return_rms"])
        reward_norm.returns = resume_state["reward_returns"].numpy().copy()
        set_rng_state(resume_state["rng"])
        global_step = resume_state["global_step"]
        print(f"resumed {run_dir} from step {global_step}")

    if args.track:  # Weights & Biases only when asked: without --track it is never imported
        import wandb

        # wandb's files go to ./wandb (as in CleanRL): inside the run folder its tensorboard sync would copy itself.
        # A resumed run continues the same W&B run (its id comes from the run folder).
        wandb.init(
            project=args.wandb_project_name,
            entity=args.wandb_entity,
            name=args.run_name,
            id=hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:16],
            resume="allow",
            config=dataclasses.asdict(args),
            sync_tensorboard=True,
        )
    writer = SummaryWriter(run_dir, purge_step=global_step + 1)  # drops what was logged after the checkpoint
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in dataclasses.asdict(args).items()),
    )

    # Rollout storage, allocated once.
    shape = (args.num_steps, args.num_envs)
    obs = torch.zeros(shape + obs_shape, dtype=torch.uint8, device=device)
    actions = torch.zeros(shape, dtype=torch.long, device=device)
    logprobs, values = (torch.zeros(shape, device=device) for _ in range(2))
    env_steps = np.zeros(
        (4,) + shape, np.float32
    )  # rewards, terminations, dones, valid: filled on the host, one upload

    # A resumed run restarts its episodes: environment states cannot be saved.
    raw_obs, _ = envs.reset()
    next_obs = torch.as_tensor(raw_obs, device=device)
    done = np.zeros(args.num_envs, bool)
    episode_stats, recent_returns = EpisodeStats(args.num_envs), []
    start_time, start_step = time.time(), global_step

    last_checkpoint_time = time.time()
    try:
        for update in range(start_update, num_updates + 1):
            rollout_start_step = global_step
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (update - 1.0) / num_updates)

            # Rollout (Algorithm 1, line 3)
            for step in range(args.num_steps):
                STOP.check()
                global_step += args.num_envs
                obs[step] = next_obs
                with torch.inference_mode(), mixed_precision(args, device):
                    action, logprob, _, value = agent.get_action_and_value(next_obs)
                actions[step], logprobs[step], values[step] = action, logprob, value
                # What a step ends, each name once: envpool's term (a life lost or the game over) and trunc (the
                # step limit); done = either, the end of a training episode (A.2: a life); game_over, the end of a
                # scored game; valid = False on envpool's reset step after a done (action ignored, reward 0: not a
                # transition). The rollout stores term, done and valid (terminations, dones, valid for the GAE).
                valid = ~done
                raw_obs, reward, term, trunc, info = envs.step(action.cpu().numpy())
                done = term | trunc
                game_over = info["terminated"].astype(bool) | trunc
                for ret, length in episode_stats.update(reward, game_over, valid):
                    recent_returns = (recent_returns + [ret])[-20:]
                    writer.add_scalar("charts/episodic_return", ret, global_step)
                    writer.add_scalar("charts/episodic_length", length, global_step)
                env_steps[:, step] = reward_norm(reward, done, valid), term, done, valid
                next_obs = torch.as_tensor(raw_obs, device=device)

            rewards, terminations, dones, valid = torch.as_tensor(env_steps, device=device)  # one upload per rollout

            # Advantages (Algorithm 1, line 4)
            with torch.inference_mode(), mixed_precision(args, device):
                # With envpool's next-step reset, the observation after a truncated step is its true final
                # observation, so values[t + 1] bootstraps time limits (A.2) with no extra forward pass.
                next_values = torch.cat([values[1:], agent.get_value(next_obs)[None]])
                advantages, returns = compute_gae(
                    rewards, values, next_values, terminations, dones, valid, args.gamma, args.gae_lambda
                )

            # PPO update (Algorithm 1, lines 5-10)
            b_obs, b_actions = obs.reshape((-1,) + obs_shape), actions.reshape(-1)
            b_logprobs, b_advantages, b_returns, b_values = (
                x.reshape(-1) for x in (logprobs, advantages, returns, values)
            )
            valid_idx = torch.nonzero(valid.reshape(-1)).squeeze(-1)
            update_stats = []
            for _ in range(args.update_epochs):
                perm = valid_idx[torch.randperm(len(valid_idx), device=device)]
                for start in range(0, len(perm), args.minibatch_size):
                    STOP.check()
                    mb = perm[start : start + args.minibatch_size]
                    with mixed_precision(args, device):  # one forward pass of the minibatch (bfloat16 under --bf16)
                        dist, newvalue = agent.get_dist_and_value(b_obs[mb])
                    newlogprob, entropy = dist.log_prob(b_actions[mb]), dist.entropy()
                    loss, ratio, stats = ppo_loss(
                        newlogprob, b_logprobs[mb], b_advantages[mb], entropy, newvalue, b_returns[mb], args
                    )
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                    update_stats.append(stats)

            # Logging
            y_pred, y_true = b_values[valid_idx], b_returns[valid_idx]
            explained_var = (
                (1 - torch.var(y_true - y_pred) / torch.var(y_true)).item() if len(y_true) > 1 else float("nan")
            )
            sps = int((global_step - start_step) / (time.time() - start_time))
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            keys = list(update_stats[0])
            means = torch.stack([torch.stack([s[k] for s in update_stats]).mean() for k in keys]).tolist()
            for key, value in zip(keys, means):
                writer.add_scalar(f"losses/{key}", value, global_step)
            writer.add_scalar("losses/explained_variance", explained_var, global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            if args.eval_every and global_step // args.eval_every > (global_step - batch_size) // args.eval_every:
                curve = evaluate(
                    agent,
                    args,
                    obs_norm,
                    args.eval_every_episodes,
                    args.eval_envs,
                    seed=args.seed + 20_000,
                    device=device,
                )
                writer.add_scalar("eval/episodic_return", curve["mean"], global_step)
            eta = (num_updates * batch_size - global_step) / max(sps, 1)
            mean_return = f"{np.mean(recent_returns):.2f}" if recent_returns else "n/a"
            print(
                f"step {global_step}/{num_updates * batch_size} | SPS {sps} | ETA {eta / 60:.1f} min | "
                f"return {mean_return}",
                flush=True,
            )

            if (
                update % args.checkpoint_every == 0
                or update == num_updates
                or time.time() - last_checkpoint_time >= 60 * args.checkpoint_minutes
            ):
                save_checkpoint(checkpoint_path, agent, args, obs_norm, global_step, update, optimizer, reward_norm)
                last_checkpoint_time = time.time()
    except Interrupted:
        # The interrupted update does not count: its rollout is collected again on resume, while the minibatches
        # it finished stay in the weights.
        save_checkpoint(checkpoint_path, agent, args, obs_norm, rollout_start_step, update - 1, optimizer, reward_norm)
        writer.close()
        raise
    envs.close()

    # Final policy at the default teacher location of the distillation scripts (policy only, no optimiser).
    save_checkpoint(teacher_path, agent, args, obs_norm, global_step, num_updates)

    result = {
        "script": SCRIPT,
        "method": METHOD,
        "suite": SUITE,
        "env_id": args.env_id,
        "seed": args.seed,
        "total_timesteps": global_step,
        "student_size": None,
        "policy_params": agent.policy_params(),
        "checkpoint_sha256": sha256_of(teacher_path),
        "evaluation": None,
        "evaluation_train_levels": None,
    }
    if args.eval_episodes > 0:
        result["evaluation"] = evaluate(
            agent, args, obs_norm, args.eval_episodes, args.eval_envs, seed=args.seed + 10_000, device=device
        )
        writer.add_scalar("eval/mean_return", result["evaluation"]["mean"], global_step)
        print(f"evaluation: {describe(result['evaluation'])}")
    record_run(result, args, device)
    write_json(os.path.join(run_dir, "eval.json"), result)
    write_json(teacher_path[:-3] + ".json", result)
    writer.close()
    if args.track:
        wandb.finish()
    for path in (os.path.join(run_dir, "eval.json"), checkpoint_path, teacher_path, teacher_path[:-3] + ".json"):
        print(f"wrote {path}")
    return result


# ---------------------------------------------------------------------------------------------
# Checkpoint
# ---------------------------------------------------------------------------------------------
def atomic_write(path: str, write) -> None:
    """write(tmp_path), then rename: a reader never sees a half-written file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def write_json(path: str, data: dict) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)

    atomic_write(path, write)


def rng_state() -> dict:
    """Every generator the run draws from: on a GPU, action sampling and the minibatch permutation draw from the
    CUDA generators (None when the run never touched CUDA)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.as_tensor(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    random.setstate(state["python"])
    if state.get("cuda") is not None:  # a GPU run continues its CUDA streams (start_run refuses another device)
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str,
    agent: Agent,
    args: Args,
    obs_norm,
    global_step: int,
    update: int,
    optimizer=None,
    reward_norm: Optional[RewardNormalizer] = None,
) -> None:
    """Everything needed to rebuild and run the policy; optimiser, RNG and reward statistics only to resume."""
    state = {
        "format_version": CHECKPOINT_VERSION,
        "script": SCRIPT,
        "script_path": os.path.abspath(__file__),
        "script_sha256": CODE_VERSION["script_sha256"],
        "method": METHOD,
        "suite": SUITE,
        "env_id": args.env_id,
        "network": agent.spec,
        "obs_shape": list(agent.obs_shape),
        "action_dim": agent.action_dim,
        "actor": {k: v for k, v in agent.state_dict().items() if not k.startswith("critic.")},
        "critic": {k: v for k, v in agent.state_dict().items() if k.startswith("critic.")},
        "obs_rms": obs_norm.rms.state_dict() if obs_norm else None,
        "args": dataclasses.asdict(args),
        "global_step": global_step,
        "update": update,
    }
    if optimizer is not None:
        state.update(
            optimizer=optimizer.state_dict(),
            rng=rng_state(),
            device=next(agent.parameters()).device.type,
            return_rms=reward_norm.rms.state_dict(),
            reward_returns=torch.as_tensor(reward_norm.returns),
        )
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, not a torch file, foreign pickle, ...
        raise UsageError(f"cannot read checkpoint {path}: not a complete checkpoint file ({type(e).__name__})")
    required = {"script", "suite", "env_id", "network", "obs_shape", "action_dim", "actor", "critic", "obs_rms"}
    if not isinstance(state, dict) or state.get("format_version") != CHECKPOINT_VERSION or required - set(state):
        raise UsageError(f"{path} is not a checkpoint of this project (format version {CHECKPOINT_VERSION})")
    return state


def agent_from_checkpoint(state: dict) -> Agent:
    agent = Agent(state["network"], tuple(state["obs_shape"]), state["action_dim"])
    agent.load_state_dict({**state["actor"], **state["critic"]})
    return agent


def sha256_of(path: str) -> str:
    """Names a checkpoint file: a student's eval.json records its teacher's, and the report matches on it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def env_record(suite: str, args: Args, training: bool, test_levels: bool = True) -> dict:
    """The environments that trained or evaluated the run, as its eval.json records them."""
    return {
        "suite": suite,
        "env_id": args.env_id,
        "backend": "envpool",
        "version": package_version("envpool"),
        "max_episode_steps": args.max_episode_steps,
    }


def package_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_version() -> dict:
    """This file's sha256 and the git commit of its folder, with whether tracked files differed from it (None
    outside a git checkout): taken when the script is loaded, so a run records the code it runs, even if the
    files change while it trains."""
    here = os.path.abspath(__file__)
    record = {"script": os.path.basename(here), "script_sha256": sha256_of(here), "git_commit": None, "git_dirty": None}
    git = ["git", "-C", os.path.dirname(here)]
    try:
        commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        status = subprocess.run(
            git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return record
    if commit.returncode == 0 and status.returncode == 0:
        record.update(git_commit=commit.stdout.strip(), git_dirty=bool(status.stdout.strip()))
    return record


CODE_VERSION = code_version()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def record_run(result: dict, args: Args, device: torch.device) -> dict:
    """What the run ran on, added to its eval.json: the environments (backend and version; Procgen's level set)
    of training and of each evaluation, the code (CODE_VERSION), the full arguments, the device and the library
    versions. A reader checks "unseen test levels" or "trained on envpool" from the data, not from the code."""
    teacher = result.get("teacher") or {}
    for evaluation in filter(
        None,
        (
            result.get("evaluation"),
            result.get("evaluation_train_levels"),
            teacher.get("evaluation"),
            teacher.get("evaluation_train_levels"),
        ),
    ):
        evaluation["envs"] = env_record(
            result["suite"], args, training=False, test_levels=evaluation.get("levels") != "train"
        )
    cuda = device.type == "cuda"
    result["training_envs"] = env_record(result["suite"], args, training=True)
    result["ran_on"] = {
        **CODE_VERSION,
        "args": dataclasses.asdict(args),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    return result


def wrote_it_itself(run_dir: str, teacher_path: str) -> bool:
    """Whether a run (finished, now extended with --resume) wrote this teacher file: its eval.json names it."""
    eval_path = os.path.join(run_dir, "eval.json")
    if not os.path.isfile(eval_path):
        return False
    with open(eval_path) as f:
        return json.load(f).get("checkpoint_sha256") == sha256_of(teacher_path)


# ---------------------------------------------------------------------------------------------
# Interruption and resume
# ---------------------------------------------------------------------------------------------
class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; raised at the next safe point (env step, minibatch, evaluation step)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignal:
    """Ctrl-C (SIGINT) and SLURM's preemption or time limit (SIGTERM, then SIGKILL after a grace period) ask the
    run to stop. The handler only takes note; check() raises at the next safe point, where the run writes its
    resumable checkpoint, says how to resume, and exits with 128 + the signal's number."""

    def __init__(self):
        self.signum, self.checkpoint, self.previous = None, None, {}

    def arm(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self.handle)

    def disarm(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def handle(self, signum, frame) -> None:
        self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    def report(self) -> str:
        name = signal.Signals(self.signum).name
        if self.checkpoint is None or not os.path.isfile(self.checkpoint):
            return f"interrupted by {name} before the first checkpoint: nothing to resume, start the run again"
        step = load_checkpoint(self.checkpoint)["global_step"]
        return (
            f"interrupted by {name}: {self.checkpoint} holds step {step}; resume with: "
            f"python {sys.argv[0]} --resume {self.checkpoint}"
        )


STOP = StopSignal()
# Flags that may differ from the checkpoint's on --resume: they do not change what is trained (one list for all eight
# scripts: a name a script has no flag for is never given).
RESUME_MAY_CHANGE = (
    "resume",
    "total_timesteps",
    "checkpoint_every",
    "checkpoint_minutes",
    "eval_episodes",
    "eval_envs",
    "eval_every",
    "cuda",
    "run_name",
    "runs_dir",
    "track",
    "wandb_project_name",
    "wandb_entity",
    "overwrite_teacher",
)


def given_flags(argv: list) -> set:
    """The Args fields named on the command line (--flag, --flag=value, --no-flag)."""
    names, given = {f.name for f in dataclasses.fields(Args)}, set()
    for token in argv:
        name = token[2:].split("=")[0].replace("-", "_") if token.startswith("--") else ""
        name = name[3:] if name.startswith("no_") and name[3:] in names else name
        if name in names:
            given.add(name)
    return given


# Flags newer than some runs, and the value a run from before the flag had: --shared-trunk (pixel scripts) came
# later, so an older run's actor and critic have a trunk each.
BEFORE_THE_FLAG = {"shared_trunk": False}


def resume_args(args: Args, given: set) -> tuple[Args, dict]:
    """--resume PATH alone continues that run: the flags not given come from its checkpoint."""
    if os.path.isdir(args.resume):  # the run folder names its checkpoint
        args.resume = os.path.join(args.resume, "checkpoint.pt")
    state = load_checkpoint(args.resume)
    if state["script"] != SCRIPT or "optimizer" not in state:
        raise UsageError(f"--resume {args.resume} is a checkpoint of {state['script']}, not a resumable {SCRIPT} run")
    names = {f.name for f in dataclasses.fields(Args)}
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in state["args"].items() if k in names}
    args = dataclasses.replace(args, **{k: v for k, v in saved.items() if k not in given})
    for name, value in BEFORE_THE_FLAG.items():  # a run from before the flag: the value it ran with
        if name in names and name not in state["args"]:
            setattr(args, name, value)
    args.runs_dir, args.run_name = os.path.split(os.path.normpath(os.path.dirname(args.resume) or os.getcwd()))
    args.runs_dir = args.runs_dir or "."
    return args, state


def check_resume_flags(args: Args, state: dict, given: set) -> None:
    """A given flag that would change what the checkpoint's run trains is refused (compared once resolved)."""
    for name in sorted(given - set(RESUME_MAY_CHANGE)):
        ours, theirs = getattr(args, name), state["args"].get(name)
        if (list(ours) if isinstance(ours, tuple) else ours) != (list(theirs) if isinstance(theirs, tuple) else theirs):
            raise UsageError(
                f"--{name.replace('_', '-')} {ours} contradicts {args.resume}, whose run has {theirs}; "
                f"leave it out to resume that run, or start a new one"
            )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def main() -> None:
    try:
        args = parse_args()
        STOP.arm()
        train(args, given_flags(sys.argv[1:]))
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(STOP.report(), file=sys.stderr)
        sys.exit(128 + e.signum)
    finally:
        STOP.disarm()


if __name__ == "__main__":
    main()
