"""Evaluate any checkpoint of this project again, and watch it play.

    python tools/evaluate.py --checkpoint teachers/Hopper-v4__1.pt
    python tools/evaluate.py --checkpoint runs/NAME/checkpoint.pt --episodes 100 --actions stochastic
    python tools/evaluate.py --checkpoint runs/NAME/checkpoint.pt --levels train        # Procgen
    python tools/evaluate.py --checkpoint teachers/Hopper-v4__1.pt --capture-video --video-episodes 3
    python tools/evaluate.py --checkpoint teachers/Hopper-v4__1.pt --compare runs/NAME/checkpoint.pt
    python tools/evaluate.py --checkpoint runs/NAME/checkpoint.pt --random-policy   # the random baseline (pixels)

Any checkpoint the scripts write works (a teacher file, a run's checkpoint.pt; any suite, any method): the
checkpoint names the script that wrote it, and this tool imports that script and uses its own
load_checkpoint, agent_from_checkpoint and evaluate, so there is one definition of the evaluation protocol.

Protocol (defaults, the paper's, as the scripts' final evaluation): Atari and Mujoco 50 episodes with
deterministic actions, Procgen 200 episodes with sampled actions on unseen test levels; the env seed is the
training seed + 10,000 and the parallel envs are the run's --eval-envs, so that, with the same episode count,
the numbers equal the run's eval.json. Every evaluation (the scripts' and this tool's) draws its sampled actions
from its own RNG stream seeded with its seed, so stochastic evaluations repeat exactly too.

The result (the `evaluation` block of eval.json, with the checkpoint's path and sha256) is printed and written
as JSON to --out, default {checkpoint without .pt}.evaluate.json beside the checkpoint (.compare.json with
--compare, so that a comparison leaves an earlier evaluation and its videos listed).

Videos (--capture-video; --compare implies it) are MP4s (H.264, PyAV's bundled FFmpeg) at the environment's
full resolution, in colour, in videos/ beside the JSON (or --video-dir), named in the JSON:
- Mujoco: gymnasium's render_mode="rgb_array" (MUJOCO_GL=egl unless set), 480x480, through the task's
  "track" camera, which follows the agent. Video episode j is the episode that evaluate()'s env j % n plays
  as its (j // n)-th (n parallel envs): same seed, same actions with deterministic actions, so its return is
  one of the evaluation's returns.
- Atari: envpool cannot render, so the video replays the scripts' envpool preprocessing on ale-py's
  gymnasium env (frameskip 1, no sticky actions; the no-ops, fire reset, frame skip with max-pooling, 84x84
  INTER_AREA grayscale and frame stack read from the script's own envpool config): the policy sees the
  84x84 stack, the video shows the 210x160 RGB screen. The random no-ops come from this tool's RNG, so the
  video's episodes are not the evaluation's (tests/test_evaluate.py shows the two pipelines agree frame for
  frame, within 1 grey level of resize rounding, when no-ops and actions are the same).
- Procgen: the 512x512 RGB render of a one-env Procgen on the evaluation's levels (its level sequence is its
  own, so not the evaluation's episodes).
- --compare PATH2: one video per episode with the two policies side by side on the same env seed, each panel
  labelled with its method, size and running return.
"""

import dataclasses
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import tyro  # noqa: E402
from entry import UsageError, import_script, plural, run_main, write_json  # noqa: E402  (tools/ is sys.path[0] when a tool runs)

SCRIPT = "tools/evaluate.py"
# The suites of the scripts that write checkpoints (every script's evaluate() has one signature).
SUITES = ("atari", "mujoco", "procgen")
PAPER_EPISODES = {"atari": 50, "mujoco": 50, "procgen": 200}
EVAL_SEED_OFFSET = 10_000  # the scripts' final evaluation runs on seed args.seed + 10_000
PROCGEN_RENDER_FPS = 15  # Procgen's own interactive frame rate
LABEL_HEIGHT = 28  # pixels of the label bar above each --compare panel (two lines of the default font)


@dataclass
class Args:
    checkpoint: str
    """checkpoint to evaluate: a teacher file (teachers/*.pt) or a run's checkpoint.pt, any suite, any method"""
    episodes: Annotated[
        Optional[int],
        tyro.conf.arg(
            metavar="INT", help_behavior_hint="(default: the paper's, 50 for Atari and Mujoco, 200 for Procgen)"
        ),
    ] = None
    """evaluation episodes"""
    actions: Annotated[
        Optional[Literal["deterministic", "stochastic"]],
        tyro.conf.arg(help_behavior_hint="(default: the paper's, sampled for Procgen only)"),
    ] = None
    """most likely or sampled actions"""
    levels: Annotated[Optional[Literal["test", "train"]], tyro.conf.arg(help_behavior_hint="(default: test)")] = None
    """Procgen only: unseen test levels or the run's training levels"""
    seed: Annotated[
        Optional[int], tyro.conf.arg(metavar="INT", help_behavior_hint="(default: the run's seed + 10,000)")
    ] = None
    """env seed of the evaluation (the default is the seed of the scripts' final evaluation)"""
    num_envs: Annotated[
        Optional[int], tyro.conf.arg(metavar="INT", help_behavior_hint="(default: the run's --eval-envs)")
    ] = None
    """parallel envs (each env plays a fixed quota, so the numbers depend on it)"""
    out: Annotated[
        Optional[str],
        tyro.conf.arg(
            metavar="STR",
            help_behavior_hint=(
                "(default: {checkpoint without .pt}.evaluate.json; .compare.json with --compare, .random.json with "
                "--random-policy, .corrupted.json with --corruption-sigma)"
            ),
        ),
    ] = None
    """JSON file to write"""
    capture_video: bool = False
    """write MP4s of the first --video-episodes evaluation episodes"""
    video_episodes: int = 1
    """episodes to film with --capture-video or --compare (at most --episodes)"""
    video_dir: Annotated[
        Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: videos/ beside the JSON)")
    ] = None
    """folder of the videos"""
    compare: Annotated[Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: none)")] = None
    """a second checkpoint (same env) to film side by side with --checkpoint on the same env seeds (implies
    --capture-video); typically a teacher and its student"""
    random_policy: bool = False
    """Atari and Procgen: play uniformly random actions (the checkpoint's actor head zeroed: equal logits,
    sampled) on the evaluation's own envs, levels, episodes and seed: the random baseline beside its score"""
    corruption_sigma: float = 0.0
    """imperfect teacher (section 3): evaluate the checkpoint with N(0, sigma^2) noise on every weight of its policy
    network, the noise a PPD or baseline run with --teacher-corruption-sigma adds (the PPD script's
    corrupt_teacher_), so the corrupted teacher is measured before its students are run"""
    corruption_seed: Annotated[
        Optional[int],
        tyro.conf.arg(
            metavar="INT", help_behavior_hint="(default: the checkpoint's seed, as a student run of that seed draws it)"
        ),
    ] = None
    """seed of the corruption noise (a student run draws it with its own --seed)"""
    game: Annotated[Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: none)")] = None
    """a multi-teacher checkpoint (multi_teacher_procgen.py) plays this one of its games (--env-ids), as its
    eval.json's games.{game} evaluates it"""
    cuda: bool = True
    """use CUDA when it is available (as the scripts do)"""


# ---------------------------------------------------------------------------------------------
# Loading: the checkpoint's own script builds its agent and evaluates it
# ---------------------------------------------------------------------------------------------
def family(module) -> str:
    """'single' for a script of one suite (teachers, PPD), 'baseline' for the suite-agnostic baselines."""
    return "single" if hasattr(module, "SUITE") else "baseline"


def read_checkpoint(path: str):
    """(module of the script that wrote it, checkpoint state); bad files and unknown scripts or suites raise."""
    # Any script's load_checkpoint checks file, format and keys; the suite-agnostic baseline's is used to read
    # the script name before the right module is known.
    state = import_script("student_distill.py").load_checkpoint(path)
    script, suite = state["script"], state["suite"]
    if suite not in SUITES:
        raise UsageError(f"{path} is of unknown suite '{suite}' (known: {', '.join(SUITES)})")
    module = import_script(script, state.get("script_path"))
    if family(module) == "single" and module.SUITE != suite:
        raise UsageError(f"{path} claims suite '{suite}' but {script} trains {module.SUITE}")
    return module, state


def script_args(module, state: dict):
    """The run's Args as its script knows them now: fields the checkpoint lacks (older runs) keep defaults."""
    saved = state.get("args") or {}
    known = {f.name for f in dataclasses.fields(module.Args)}
    return module.Args(**{k: v for k, v in saved.items() if k in known})


class Policy:
    """A checkpoint's agent, its observation normalisation and its labels, from its own script's pieces."""

    def __init__(self, path: str, device, game: Optional[str] = None):
        self.path = path
        self.module, self.state = read_checkpoint(path)
        self.script, self.suite, self.env_id = self.state["script"], self.state["suite"], self.state["env_id"]
        self.family = family(self.module)
        self.args = script_args(self.module, self.state)
        self.args.env_id = self.env_id  # the canonical id the checkpoint trained on
        self.agent = self.module.agent_from_checkpoint(self.state).to(device).eval()
        if hasattr(self.module, "game_view"):  # a multi-teacher student plays one game at a time
            games = list(self.args.env_ids)
            if game not in games:
                raise UsageError(f"{path} is a multi-teacher student of {', '.join(games)}: name one with --game")
            self.args = self.module.game_view(self.args, games.index(game))
            self.env_id = game
            self.agent.games = torch.tensor(games.index(game), device=device)  # a --game-ids student's input
        self.device = device
        self.obs_norm, self.normalize = None, None
        if self.suite == "mujoco":
            if self.state["obs_rms"] is None:
                raise UsageError(f"{path} is a Mujoco checkpoint without observation statistics")
            if self.family == "single":  # ObsNormalizer, the script's clip; frozen here (update=False)
                self.obs_norm = self.module.ObsNormalizer(tuple(self.state["obs_shape"]), self.args.obs_clip)
                self.obs_norm.rms.load_state_dict(self.state["obs_rms"])
                self.normalize = lambda obs: self.obs_norm(obs, update=False)
            else:  # the baselines' frozen RunningMeanStd is called directly
                self.obs_norm = self.module.RunningMeanStd(self.state["obs_rms"])
                self.normalize = self.obs_norm

    @property
    def method(self) -> str:
        return self.state.get("method") or self.script

    @property
    def size(self) -> str:
        """The student size of a distillation run, 'teacher' for a PPO teacher."""
        return getattr(self.args, "student", None) or "teacher"

    def make_uniform(self) -> None:
        """Equal logits for every observation (a categorical actor's last layer zeroed): a uniform random
        policy that keeps the checkpoint's envs and evaluation code."""
        head = self.agent.actor[-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a batch of raw observations, as the scripts' evaluate() picks them."""
        with torch.inference_mode():
            x = torch.as_tensor(self.normalize(obs) if self.normalize else obs, device=self.device)
            return self.agent.act(x, deterministic).cpu().numpy()

    def evaluate(self, episodes: int, num_envs: int, seed: int, deterministic: bool, test_levels: bool) -> dict:
        """The script's own evaluate(), whose signature every script shares."""
        return self.module.evaluate(
            self.agent,
            self.args,
            self.obs_norm,
            episodes,
            num_envs,
            seed,
            self.device,
            deterministic=deterministic,
            test_levels=test_levels,
        )


# ---------------------------------------------------------------------------------------------
# Rendering environments: one env each, policy observations and full-resolution RGB frames
# ---------------------------------------------------------------------------------------------
class MujocoPlayer:
    """gymnasium's v4 task with rgb_array rendering through the task's own tracking camera. The first reset is
    seeded as evaluate()'s vector env seeds its env (seed + index); later resets continue the env's RNG, as the
    vector env's autoreset does."""

    fps_key = "render_fps"

    def __init__(self, policy: Policy, seed: int, levels: str):
        import gymnasium as gym

        warnings.filterwarnings("ignore", message=".*is out of date.*")  # the paper's envs are v4, on purpose
        # Named, the XML's "track" camera (mode trackcom: it follows the body) films the task; left to its
        # default, gymnasium 1.4 swaps it for a free camera at a fixed point (its trackbodyid only acts on a
        # tracking camera), and a hopper leaves the picture within 100 steps. Tasks without one (the pendulums)
        # keep gymnasium's default.
        # The script's own observation (envpool's, on Humanoid-v4: the contact forces zeroed), as evaluate() plays.
        self.env = policy.module.envpool_observation(
            gym.make(policy.env_id, render_mode="rgb_array", camera_name="track")
        )
        self.seed = seed
        self.low, self.high = self.env.action_space.low, self.env.action_space.high
        self.fps = int(self.env.metadata.get("render_fps", 30))

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.seed)
        self.seed = None
        return obs[None]

    def step(self, action: np.ndarray):
        """(obs batch of one, reward, episode over, whether frame() shows this episode)."""
        obs, reward, term, trunc, _ = self.env.step(np.clip(action[0], self.low, self.high))
        return obs[None], float(reward), bool(term or trunc), True

    def frame(self) -> np.ndarray:
        return self.env.render()

    def close(self):
        self.env.close()


def area_resize_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix of OpenCV's INTER_AREA downscaling: each output pixel averages the source pixels
    its footprint [i * s, (i + 1) * s) covers, weighted by the overlap (s = src / dst)."""
    scale = src / dst
    weights = np.zeros((dst, src))
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), src)):
            weights[i, j] = (min(hi, j + 1) - max(lo, j)) / scale
    return weights


class AtariPlayer:
    """ale-py's gymnasium env (frameskip 1, no sticky actions) behind the preprocessing of the script's envpool
    env, whose config it reads: reset = reset_game, 1..noop_max no-ops (one fewer with fire reset), FIRE if
    the game has it, the screen pushed into every stack slot; step = the action on frame_skip frames, the max
    of the last two grayscale screens (the last one alone when the game ended earlier), resized, stacked;
    truncation after max_episode_steps agent steps of the game. A life lost (episodic_life, as the scripts play)
    makes the next step envpool's reset step: no-ops and FIRE without a new game, the action ignored, reward 0,
    the screen pushed once; step() reports the end of a game only."""

    def __init__(self, config: dict, seed: int, noop_max: Optional[int] = None):
        import ale_py

        unsupported = {
            k: config[k]
            for k, ok in (
                ("gray_scale", True),
                ("use_inter_area_resize", True),
                ("full_action_space", False),
                ("episodic_life", True),
            )
            if config[k] != ok
        }
        if unsupported or config["frame_skip"] < 2:
            raise UsageError(f"cannot mirror the script's envpool Atari config for video: {unsupported or config}")
        self.frame_skip, self.stack_num = config["frame_skip"], config["stack_num"]
        self.max_steps, self.noop_max = (
            config["max_episode_steps"],
            config["noop_max"] if noop_max is None else noop_max,
        )
        self.env = ale_py.AtariEnv(
            game=config["task"],
            obs_type="grayscale",
            frameskip=1,
            repeat_action_probability=config["repeat_action_probability"],
            full_action_space=False,
            render_mode="rgb_array",
            max_num_frames_per_episode=10**9,
        )  # the agent-step limit applies, as envpool's
        action_set = list(self.env.ale.getMinimalActionSet())
        self.noop_action = action_set.index(ale_py.Action.NOOP)
        # envpool fires on reset when the game's action set has FIRE (use_fire_reset)
        self.fire_action = (
            action_set.index(ale_py.Action.FIRE)
            if config["use_fire_reset"] and ale_py.Action.FIRE in action_set
            else None
        )
        self.wy = area_resize_weights(210, config["img_height"])
        self.wx = area_resize_weights(160, config["img_width"])
        self.rng, self.seed, self.fps = np.random.default_rng(seed), seed, 60 // self.frame_skip
        self.pool = [np.zeros((210, 160), np.uint8) for _ in range(2)]
        self.life_lost = False

    @classmethod
    def for_policy(cls, policy: Policy, seed: int, levels: str) -> "AtariPlayer":
        return cls(cls.envpool_config(policy, seed), seed)

    @staticmethod
    def envpool_config(policy: Policy, seed: int) -> dict:
        """The config of the envpool env the script evaluates on (one env)."""
        m = policy.module
        if policy.family == "baseline":
            envs = m.VecEnv("atari", policy.env_id, 1, seed, policy.args, training=False)
            config = dict(envs.env.config)
        else:
            envs = m.make_env(policy.env_id, 1, seed, policy.args.max_episode_steps)
            config = dict(envs.config)
        envs.close()
        return config

    def resize(self, gray: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(self.wy @ gray.astype(np.float64) @ self.wx.T), 0, 255).astype(np.uint8)

    def reset(self) -> np.ndarray:
        gray, _ = self.env.reset(seed=self.seed)
        self.seed = None  # later episodes continue the emulator, as envpool's do
        gray, _ = self.relaunch(gray)
        self.stack = [self.resize(gray)] * self.stack_num
        self.steps, self.lives = 0, self.env.ale.lives()
        return np.stack(self.stack)[None]

    def relaunch(self, gray: np.ndarray) -> tuple[np.ndarray, bool]:
        """envpool's no-ops and FIRE of a reset; (the screen, whether a game over made it start a new game)."""
        noops = int(self.rng.integers(0, max(self.noop_max, 1))) + 1 - (self.fire_action is not None)
        new_game = False
        for _ in range(noops):
            gray, _, term, _, _ = self.env.step(self.noop_action)
            if term:
                gray, _ = self.env.reset()
                new_game = True
        if self.fire_action is not None:
            gray, *_ = self.env.step(self.fire_action)
        self.pool[0] = gray
        return gray, new_game

    def step(self, action: np.ndarray):
        if self.life_lost:  # envpool's reset step after a life loss: the same game goes on
            self.life_lost = False
            gray, new_game = self.relaunch(self.pool[0])
            self.stack = [self.resize(gray)] * self.stack_num if new_game else self.stack[1:] + [self.resize(gray)]
            self.lives = self.env.ale.lives()
            return np.stack(self.stack)[None], 0.0, False, True
        reward, over, frames = 0.0, False, 0
        for k in range(self.frame_skip):
            gray, r, term, _, _ = self.env.step(int(action[0]))
            reward, frames = reward + float(r), k + 1
            if k >= self.frame_skip - 2:
                self.pool[k - (self.frame_skip - 2)] = gray
            if term:
                over = True
                break
        # envpool max-pools only after a full skip, in place into its first buffer; a game that ends earlier
        # shows that buffer as it stands (the last frame but one, or the previous step's pooled screen)
        if frames == self.frame_skip:
            self.pool[0] = np.maximum(self.pool[0], self.pool[1])
        screen = self.pool[0]
        self.stack = self.stack[1:] + [self.resize(screen)]
        self.steps += 1
        over = over or self.steps >= self.max_steps
        lives = self.env.ale.lives()
        self.life_lost = not over and 0 < lives < self.lives
        self.lives = lives
        return np.stack(self.stack)[None], reward, over, True

    def frame(self) -> np.ndarray:
        return self.env.render()

    def close(self):
        self.env.close()


class ProcgenPlayer:
    """A one-env Procgen on the evaluation's levels with its 512x512 RGB render. Procgen resets in the step an
    episode ends, so that step's frame already shows the next episode and is not filmed."""

    def __init__(self, policy: Policy, seed: int, levels: str):
        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):
            from procgen import ProcgenGym3Env
        args = policy.args
        start, count = (
            (policy.module.TEST_START_LEVEL, policy.module.TEST_START_LEVEL)
            if levels == "test"
            else (args.start_level, args.num_levels)
        )
        self.env = ProcgenGym3Env(
            num=1,
            env_name=policy.env_id,
            num_levels=count,
            start_level=start,
            distribution_mode=args.distribution_mode,
            rand_seed=seed,
            render_mode="rgb_array",
        )
        self.fps = PROCGEN_RENDER_FPS

    def reset(self) -> np.ndarray:
        return self.env.observe()[1]["rgb"]

    def step(self, action: np.ndarray):
        self.env.act(action.astype(np.int32))
        reward, obs, first = self.env.observe()
        return obs["rgb"], float(reward[0]), bool(first[0]), not bool(first[0])

    def frame(self) -> np.ndarray:
        return self.env.get_info()[0]["rgb"]

    def close(self):
        self.env.close()


PLAYERS = {"mujoco": MujocoPlayer, "atari": AtariPlayer.for_policy, "procgen": ProcgenPlayer}


def check_gl() -> None:
    """Mujoco renders headless through EGL unless MUJOCO_GL says otherwise; fail early, in one line."""
    import gc

    os.environ.setdefault("MUJOCO_GL", "egl")
    env, failure = None, None
    try:
        import gymnasium as gym

        warnings.filterwarnings("ignore", message=".*is out of date.*")
        env = gym.make("InvertedPendulum-v4", render_mode="rgb_array", width=64, height=64)
        env.reset(seed=0)
        frame = env.render()
        env.close()
        if frame is None or frame.shape != (64, 64, 3):
            failure = f"render returned {None if frame is None else frame.shape}"
    except Exception as e:  # missing libEGL/libOSMesa, bad MUJOCO_GL, no display for glfw, ...
        failure = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if failure is None:
        return
    # A half-made GL context fails again in its __del__ ("Exception ignored in ..."): collect it now, quietly.
    hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
    try:
        env = None
        gc.collect()
    finally:
        sys.unraisablehook = hook
    raise UsageError(
        f"cannot render Mujoco with MUJOCO_GL={os.environ['MUJOCO_GL']} ({failure}); "
        "headless rendering needs MUJOCO_GL=egl (libEGL) or MUJOCO_GL=osmesa (libOSMesa)"
    )


# ---------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------
class VideoWriter:
    """H.264 MP4 through PyAV (its wheels bundle FFmpeg), written to a temporary file and renamed on close."""

    def __init__(self, path: str, width: int, height: int, fps: int):
        import av

        self.path, self.tmp = path, f"{path}.tmp{os.getpid()}"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.container = av.open(self.tmp, mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=fps)
        # yuv420p (what players expect) needs even sizes: odd ones get a black last row or column
        self.width, self.height = width + width % 2, height + height % 2
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.frames, self.av = 0, av

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != (self.height, self.width):
            rgb = np.pad(rgb, ((0, self.height - rgb.shape[0]), (0, self.width - rgb.shape[1]), (0, 0)))
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.container.close()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def label_bar(width: int, lines: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, LABEL_HEIGHT), (0, 0, 0))
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    for i, line in enumerate(lines):
        draw.text((3, 1 + 13 * i), line, fill=(255, 255, 255), font=font)
    return np.asarray(image)


class Panel:
    """One policy playing one episode in its own player; its frames, return and length."""

    def __init__(self, policy: Policy, player, deterministic: bool, batch: int, row: int):
        self.policy, self.player, self.deterministic, self.batch, self.row = policy, player, deterministic, batch, row
        self.obs = player.reset()
        self.last = player.frame()
        self.ret, self.length, self.over = 0.0, 0, False

    def advance(self) -> bool:
        """One step unless the episode is over; True when a new frame of this episode was shown."""
        if self.over:
            return False
        # The observation in its env's row of a batch of evaluate()'s size: CPU matrix kernels may round a row
        # differently at another batch size or row, and Mujoco is chaotic enough for that to move returns in
        # the 7th digit. The other rows are copies.
        action = self.policy.act(np.repeat(self.obs, self.batch, axis=0), self.deterministic)[self.row : self.row + 1]
        self.obs, reward, self.over, shows = self.player.step(action)
        self.ret, self.length = self.ret + reward, self.length + 1
        if shows:
            self.last = self.player.frame()
        return shows

    def label(self) -> list[str]:
        p = self.policy
        return [
            f"{p.method} {p.size} ({p.agent.policy_params() / 1000:.1f}k)",
            f"return {self.ret:.1f}" + (" (end)" if self.over else ""),
        ]

    def summary(self) -> dict:
        p = self.policy
        return {
            "checkpoint": os.path.abspath(p.path),
            "method": p.method,
            "size": p.size,
            "return": self.ret,
            "length": self.length,
        }


def film(policies: list, slot_players: list, path: str, deterministic: bool, batch: int, row: int) -> dict:
    """Play one episode per policy in lockstep (one player each, same env seed), write the frames side by side
    (with labels when there are two), until every episode is over; the shorter one holds its last frame."""
    panels = [Panel(p, player, deterministic, batch, row) for p, player in zip(policies, slot_players)]
    labelled = len(panels) > 1
    height, width = panels[0].last.shape[:2]

    def compose() -> np.ndarray:
        if not labelled:
            return panels[0].last
        return np.concatenate([np.concatenate([label_bar(width, q.label()), q.last]) for q in panels], axis=1)

    first = compose()
    writer = VideoWriter(path, first.shape[1], first.shape[0], slot_players[0].fps)
    try:
        writer.write(first)
        while not all(q.over for q in panels):
            shown = [q.advance() for q in panels]
            if any(shown) or labelled:  # a labelled frame also shows the final return
                writer.write(compose())
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return {
        "frames": writer.frames,
        "width": writer.width,
        "height": writer.height,
        "fps": slot_players[0].fps,
        "panels": [q.summary() for q in panels],
    }


def capture_videos(
    policies: list,
    suite: str,
    episodes: int,
    num_envs: int,
    seed: int,
    deterministic: bool,
    levels: str,
    video_dir: str,
    stem: str,
    json_dir: str,
) -> list:
    """Video episode j: env slot j % num_envs (seed + slot, as evaluate()'s env of that index), its
    (j // num_envs)-th episode; each policy in its own player of that seed."""
    players, videos = {}, []
    torch.manual_seed(seed)  # sampled actions: reproducible videos
    try:
        for j in range(episodes):
            slot = j % num_envs
            if slot not in players:
                players[slot] = [PLAYERS[suite](p, seed + slot, levels) for p in policies]
            name = f"{stem}__episode{j}.mp4"
            path = os.path.join(video_dir, name)
            # Only Mujoco's video episodes are evaluation episodes, so only there is the batch padded
            batch, row = (num_envs, slot) if suite == "mujoco" else (1, 0)
            info = film(policies, players[slot], path, deterministic, batch, row)
            videos.append(
                {
                    "path": os.path.relpath(path, json_dir),
                    "episode": j,
                    "env_index": slot,
                    "env_episode": j // num_envs,
                    **info,
                }
            )
            returns = ", ".join(f"{q['return']:.1f}" for q in info["panels"])
            print(
                f"video: {path} ({plural(info['frames'], 'frame')}, {info['width']}x{info['height']}, "
                f"returns {returns})",
                flush=True,
            )
    finally:
        for group in players.values():
            for player in group:
                player.close()
    return videos


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def run(args: Args) -> dict:
    # Every check before any long work or any write.
    for name in ("episodes", "num_envs", "video_episodes"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    policy = Policy(args.checkpoint, device, args.game)
    suite = policy.suite
    other = Policy(args.compare, device, args.game) if args.compare else None
    if args.game is not None and not any(hasattr(p.module, "game_view") for p in (policy, other) if p):
        raise UsageError("--game picks a game of a multi-teacher checkpoint; this one plays one game")
    if other is not None and (other.suite, other.env_id) != (suite, policy.env_id):
        raise UsageError(
            f"--compare {args.compare} is on {other.env_id}, --checkpoint on {policy.env_id}: "
            "side by side needs the same env"
        )
    if args.levels is not None and suite != "procgen":
        raise UsageError(f"--levels applies to Procgen only; {args.checkpoint} is {suite}")
    if args.random_policy:
        if suite == "mujoco":
            raise UsageError(f"--random-policy needs discrete actions (Atari, Procgen); {args.checkpoint} is mujoco")
        if args.actions == "deterministic":
            raise UsageError("--random-policy samples its actions; drop --actions deterministic")
        if other is not None:
            raise UsageError("--random-policy evaluates one policy; drop --compare")
        policy.make_uniform()
    if args.corruption_sigma < 0:
        raise UsageError(f"--corruption-sigma must not be negative, got {args.corruption_sigma}")
    corruption = None
    if args.corruption_sigma > 0:
        if args.random_policy or other is not None:
            raise UsageError(
                "--corruption-sigma corrupts the one checkpoint evaluated; drop --random-policy and --compare"
            )
        corruption = {
            "sigma": args.corruption_sigma,
            "seed": int(policy.args.seed) if args.corruption_seed is None else args.corruption_seed,
        }
        import_script(f"ppd_{suite}.py").corrupt_teacher_(policy.agent, corruption["sigma"], corruption["seed"])
    episodes = args.episodes or PAPER_EPISODES[suite]
    deterministic = (
        (suite != "procgen" and not args.random_policy) if args.actions is None else (args.actions == "deterministic")
    )
    levels = args.levels or "test"
    seed = args.seed if args.seed is not None else int(policy.args.seed) + EVAL_SEED_OFFSET
    num_envs = min(args.num_envs or int(policy.args.eval_envs), episodes)  # evaluate() caps it the same way
    filming = args.capture_video or other is not None
    if filming and args.video_episodes > episodes:
        raise UsageError(
            f"--video-episodes {args.video_episodes} is more than the {plural(episodes, 'evaluation episode')}"
        )
    # A comparison and a random baseline have their own default names: they would otherwise replace a plain
    # evaluation's JSON and the list of its videos.
    kind = "compare" if other else "random" if args.random_policy else "corrupted" if corruption else "evaluate"
    out = args.out or f"{os.path.splitext(args.checkpoint)[0]}.{kind}.json"
    if os.path.isdir(out):
        raise UsageError(f"--out {out} is a folder; give a file name")
    if filming and suite == "mujoco":
        check_gl()

    evaluation = policy.evaluate(episodes, num_envs, seed, deterministic, test_levels=levels == "test")
    # what it ran on (issue #37): the evaluation's envs (Procgen's level set) and the code, device and versions
    evaluation["envs"] = policy.module.env_record(suite, policy.args, training=False, test_levels=levels == "test")
    ran_on = {
        **policy.module.CODE_VERSION,
        "tool_args": dataclasses.asdict(args),
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    result = {
        "checkpoint": os.path.abspath(args.checkpoint),
        "sha256": policy.module.sha256_of(args.checkpoint),
        "script": policy.script,
        "method": policy.method,
        "suite": suite,
        "env_id": policy.env_id,
        "student_size": getattr(policy.args, "student", None),
        "policy_params": policy.agent.policy_params(),
        "global_step": policy.state.get("global_step"),
        "seed": seed,
        "num_envs": num_envs,
        "policy": "uniform random" if args.random_policy else "checkpoint",
        "corruption": corruption,
        "evaluation": evaluation,
        "videos": [],
        "ran_on": ran_on,
    }
    protocol = f"{'deterministic' if deterministic else 'stochastic'} actions" + (
        f", {levels} levels" if suite == "procgen" else ""
    )
    normalized = evaluation.get("human_normalized")
    who = (
        "uniform random policy"
        if args.random_policy
        else policy.method
        + (f" corrupted with sigma {corruption['sigma']} (seed {corruption['seed']})" if corruption else "")
    )
    print(
        f"{policy.env_id} {who} ({args.checkpoint}): {plural(episodes, 'episode')}, {protocol}, "
        f"seed {seed}, {plural(num_envs, 'env')}: mean return {evaluation['mean']:.2f} +- {evaluation['std']:.2f}"
        + (f", human-normalised {normalized:.3f}" if normalized is not None else ""),
        flush=True,
    )

    if filming:
        json_dir = os.path.dirname(os.path.abspath(out))
        video_dir = args.video_dir or os.path.join(json_dir, "videos")
        stem = os.path.splitext(os.path.basename(out))[0]
        policies = [policy] + ([other] if other is not None else [])
        result["videos"] = capture_videos(
            policies, suite, args.video_episodes, num_envs, seed, deterministic, levels, video_dir, stem, json_dir
        )
    write_json(out, result)
    print(f"wrote {out}")
    return result


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n\n")[0])
    try:
        run(args)
    except Exception as e:  # the scripts' UsageErrors too: each module has its own class
        if type(e).__name__ != "UsageError":
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run_main(main)
