"""Import a stable-baselines3 (or rl-baselines3-zoo) PPO / A2C model as a teacher of this project.

    python tools/import_sb3.py --model ppo-Hopper-v3.zip --vecnormalize vec_normalize.pkl --env-id Hopper --seed 1
    python tools/import_sb3.py --model ppo-PongNoFrameskip-v4.zip --env-id Pong --seed 1

It writes {teachers_dir}/{env_id}__{seed}.pt in the checkpoint format of ppo_teacher_mujoco.py or
ppo_teacher_atari.py (the distillation scripts load it like a teacher trained here) and its .json: the imported
teacher's evaluation in this project's environments with the paper's protocol (50 episodes, deterministic
actions, full games on Atari), where it came from (source file and sha256, SB3 policy class, architecture) and
checkpoint_sha256. Nothing is written if anything fails, and an existing teacher is kept unless --overwrite.

Supported (anything else is a one-line error, exit 2):
- Mujoco: MlpPolicy (ActorCriticPolicy) of PPO or A2C, any net_arch (separate pi/vf layers, or the shared
  layers of SB3 < 1.8), Tanh (SB3's default) or ReLU, the state-independent log-std (no gSDE). Observation
  statistics of a vec_normalize.pkl become the checkpoint's frozen statistics; a VecNormalize epsilon or clip
  other than this project's (1e-8, 10) is folded exactly into the statistics and the first layers (see
  mujoco_obs_stats). Without --vecnormalize the teacher sees raw observations (identity statistics), clipped to
  +-10 as every observation in this project is.
- Atari: CnnPolicy (ActorCriticCnnPolicy) of PPO or A2C with SB3's NatureCNN, shared by actor and critic or
  not, no extra layers after it; its trunk is copied into the separate actor and critic of this project's
  'nature' network, so the imported policy computes exactly what SB3's did on the same 4x84x84 uint8 frames
  (oldest frame first, /255 inside the network, as SB3 does). The frames themselves come from envpool here,
  not from SB3's AtariWrapper: docs/teachers.md, "Teachers from stable-baselines3", lists the differences.

stable-baselines3 is needed by this tool only (pip install stable-baselines3==2.9.2): it unpickles the classes
and spaces stored in the zip and VecNormalize. The weights are read from the zip directly, so the models of
older SB3 versions (shared layers) load too.
"""

import json
import os
import pickle
import re
import sys
import warnings
import zipfile
from dataclasses import dataclass
from typing import Annotated, Optional

import numpy as np
import torch
import tyro
from entry import UsageError, run_main  # noqa: E402  (tools/ is sys.path[0] when a tool runs)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The teacher scripts define the checkpoint format, networks and evaluation. The Atari script first: it imports
# envpool with the old gym's banner silenced, so that an error stays one line on stderr.
import ppo_teacher_atari as atari_script  # noqa: E402
import ppo_teacher_mujoco as mujoco_script  # noqa: E402

SCRIPT = "tools/import_sb3.py"
# ObsNormalizer's constants: (obs - mean) / sqrt(var + OBS_EPS), clipped to +-Args.obs_clip (10) in every
# Mujoco script. VecNormalize's defaults are the same (epsilon 1e-8, clip_obs 10).
OBS_EPS = 1e-8
OBS_CLIP = mujoco_script.Args.obs_clip
POLICY_CLASSES = {"ActorCriticPolicy": "mujoco", "ActorCriticCnnPolicy": "atari"}  # MlpPolicy, CnnPolicy
ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu"}


@dataclass
class Args:
    model: str
    """the SB3 model zip (model.save(...); rl-baselines3-zoo's {algo}-{env}.zip)"""
    env_id: str
    """this project's env: a Mujoco v4 task (Hopper, Ant, ...) or an envpool Atari game (Pong, Breakout, ...)"""
    seed: int = 1
    """the teacher's seed: it is written to {teachers_dir}/{env_id}__{seed}.pt; also seeds the evaluation"""
    vecnormalize: Annotated[Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: none)")] = None
    """vec_normalize.pkl saved with the model (Mujoco): its observation statistics become the teacher's"""
    teachers_dir: str = "teachers"
    """where the distillation scripts look for teachers"""
    overwrite: bool = False
    """replace an existing {env_id}__{seed}.pt and .json (otherwise an existing teacher is an error)"""
    eval_episodes: int = 50
    """episodes of the evaluation in this project's envs (paper: 50, deterministic actions); 0 skips it"""
    eval_envs: int = 10
    """parallel environments of the evaluation"""
    max_episode_steps: int = 27_000
    """Atari: episodes are truncated after this many agent steps (envpool's default; SB3's NoFrameskip-v4
    limit of 108,000 frames is the same)"""
    cuda: bool = True
    """evaluate on the GPU when one is visible"""


# ---------------------------------------------------------------------------------------------
# Reading the SB3 zip
# ---------------------------------------------------------------------------------------------
@dataclass
class SB3Model:
    path: str
    algorithm: str  # PPO or A2C
    policy_class: str  # ActorCriticPolicy or ActorCriticCnnPolicy
    policy_kwargs: dict
    obs_shape: tuple
    action_kind: str  # the space's class name: Box (Mujoco) or Discrete (Atari)
    action_shape: tuple
    action_n: Optional[int]  # Discrete's number of actions
    params: dict  # the policy's state dict
    num_timesteps: int
    sb3_version: Optional[str]


def deserialize(raw: dict, keys) -> dict:
    """SB3's own deserialisation (cloudpickle) of only the entries we need: other entries (schedules, buffers)
    of models saved by other Python versions often fail to unpickle and do not matter here."""
    from stable_baselines3.common.save_util import json_to_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return json_to_data(json.dumps({k: raw[k] for k in keys if k in raw}))


def algorithm_of(raw: dict) -> Optional[str]:
    """The zip does not name its algorithm; PPO and A2C save their own hyperparameters (their __dict__)."""
    if "clip_range" in raw and "n_epochs" in raw:
        return "PPO"
    if "n_steps" in raw and not {"clip_range", "n_epochs", "cg_max_steps", "batch_size"} & set(raw):
        return "A2C"
    return None


def read_sb3_zip(path: str) -> SB3Model:
    if not os.path.isfile(path):
        raise UsageError(f"model not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "data" not in names or "policy.pth" not in names:
                raise UsageError(f"{path} is not a stable-baselines3 model zip (no 'data' and 'policy.pth' entries)")
            raw = json.loads(archive.read("data").decode())
            with archive.open("policy.pth") as f:
                params = torch.load(f, map_location="cpu", weights_only=True)
            version = (
                archive.read("_stable_baselines3_version").decode().strip()
                if "_stable_baselines3_version" in names
                else None
            )
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UsageError(f"{path} is not a stable-baselines3 model zip ({type(e).__name__})")
    except (UnicodeDecodeError, json.JSONDecodeError, RuntimeError, pickle.UnpicklingError) as e:
        raise UsageError(f"{path} is not a readable stable-baselines3 model zip ({type(e).__name__})")
    if not isinstance(raw, dict) or not isinstance(params, dict) or "policy_class" not in raw:
        raise UsageError(f"{path} is not a stable-baselines3 model zip (no policy class in 'data')")

    # The policy class decides what can be imported; name it even when it cannot be unpickled (sb3-contrib).
    entry = raw["policy_class"]
    try:
        policy_class = deserialize(raw, ["policy_class"])["policy_class"]
        cls_name, module = policy_class.__name__, policy_class.__module__
    except Exception:  # noqa: BLE001 (a class of a package that is not installed: name it from the JSON)
        init = entry.get("__init__", "") if isinstance(entry, dict) else ""
        match = re.search(r"<function (\w+)\.__init__", init)
        cls_name = match.group(1) if match else "?"
        module = entry.get("__module__", "?") if isinstance(entry, dict) else "?"
    algorithm = algorithm_of(raw)
    if module != "stable_baselines3.common.policies" or cls_name not in POLICY_CLASSES:
        raise UsageError(
            f"unsupported policy class {module}.{cls_name}: only PPO and A2C with MlpPolicy "
            f"(ActorCriticPolicy, Mujoco) or CnnPolicy (ActorCriticCnnPolicy, Atari) can be imported"
        )
    if algorithm is None:
        raise UsageError(
            f"unsupported algorithm: {path} has an actor-critic policy but not PPO's or A2C's "
            f"hyperparameters (TRPO, ARS, ...?); only PPO and A2C models can be imported"
        )
    if raw.get("use_sde"):
        raise UsageError(
            f"{path} uses gSDE (use_sde=True): its exploration noise depends on the state; only "
            f"the state-independent log-std of SB3's default policy can be imported"
        )
    data = {}
    for key in ("policy_kwargs", "observation_space", "action_space"):
        try:
            data.update(deserialize(raw, [key]))
        except Exception:  # noqa: BLE001 (pickled by other library versions: fall back to the readable JSON)
            pass
    kwargs = data.get("policy_kwargs")
    if kwargs is None:  # the JSON's readable copy: classes as "<class 'module.Name'>" strings
        kwargs = {k: v for k, v in (raw.get("policy_kwargs") or {}).items() if not k.startswith(":")}
    spaces = {key: space_of(raw.get(key), data.get(key)) for key in ("observation_space", "action_space")}
    if spaces["observation_space"] is None or spaces["action_space"] is None:
        raise UsageError(f"cannot read the observation and action spaces of {path}")
    action_kind, action_shape, action_n = spaces["action_space"]
    return SB3Model(
        path=path,
        algorithm=algorithm,
        policy_class=cls_name,
        policy_kwargs=kwargs,
        obs_shape=spaces["observation_space"][1],
        action_kind=action_kind,
        action_shape=action_shape,
        action_n=action_n,
        params=params,
        num_timesteps=int(raw.get("num_timesteps") or 0),
        sb3_version=version,
    )


def space_of(entry, space) -> Optional[tuple]:
    """(class name, shape, n) of a gymnasium (or old gym) space, from the object or from its JSON entry."""
    if space is not None and not isinstance(space, dict):  # a dict: the JSON entry had nothing pickled
        n = getattr(space, "n", None)
        return type(space).__name__, tuple(int(d) for d in (space.shape or ())), None if n is None else int(n)
    if not isinstance(entry, dict):
        return None
    match = re.search(r"\.(\w+)'>", str(entry.get(":type:", "")))
    shape = entry.get("_shape", entry.get("shape"))
    if match is None or shape is None:
        return None
    n = entry.get("n")
    return match.group(1), tuple(int(d) for d in shape), None if n is None else int(n)


def class_name(obj) -> Optional[str]:
    """The name of a class given as the class or as its JSON string "<class 'torch.nn.modules.activation.Tanh'>"."""
    if obj is None:
        return None
    if isinstance(obj, str):
        match = re.search(r"([\w]+)'>$", obj)
        return match.group(1) if match else obj
    return getattr(obj, "__name__", type(obj).__name__)


# ---------------------------------------------------------------------------------------------
# Mujoco: MlpPolicy -> this project's MLP Agent
# ---------------------------------------------------------------------------------------------
def linear_layers(params: dict, prefix: str) -> list:
    """[(weight, bias), ...] of the Linear layers of an SB3 nn.Sequential (Linear, activation, Linear, ...)."""
    indices = sorted(
        {int(m.group(1)) for k in params if (m := re.fullmatch(re.escape(prefix) + r"\.(\d+)\.weight", k))}
    )
    if indices != list(range(0, 2 * len(indices), 2)):
        raise UsageError(f"unexpected layers {prefix}.{indices}: not SB3's Linear/activation MLP")
    return [(params[f"{prefix}.{i}.weight"], params[f"{prefix}.{i}.bias"]) for i in indices]


def mlp_agent(model: SB3Model) -> tuple:
    """(Agent, description) computing exactly the SB3 MlpPolicy's mean, log-std and value."""
    kwargs = model.policy_kwargs
    activation_cls = class_name(kwargs.get("activation_fn")) or "Tanh"  # ActorCriticPolicy's default
    if activation_cls not in ACTIVATIONS:
        raise UsageError(f"unsupported activation_fn {activation_cls}: only Tanh and ReLU MLPs can be imported")
    extractor = class_name(kwargs.get("features_extractor_class")) or "FlattenExtractor"
    if extractor != "FlattenExtractor" or len(model.obs_shape) != 1:
        raise UsageError(
            f"unsupported features extractor {extractor} on observations {model.obs_shape}: only "
            f"flat Box observations (FlattenExtractor) can be imported"
        )
    if model.action_kind != "Box" or len(model.action_shape) != 1:
        raise UsageError(
            f"unsupported action space {model.action_kind}{model.action_shape}: a Mujoco teacher has Box actions"
        )
    p = model.params
    shared = linear_layers(p, "mlp_extractor.shared_net")  # SB3 < 1.8: layers before the pi / vf split
    pi = shared + linear_layers(p, "mlp_extractor.policy_net")
    vf = shared + linear_layers(p, "mlp_extractor.value_net")
    known = {"log_std", "action_net.weight", "action_net.bias", "value_net.weight", "value_net.bias"}
    unknown = sorted(k for k in p if k not in known and not k.startswith("mlp_extractor."))
    if unknown or known - set(p):
        raise UsageError(
            f"unexpected MlpPolicy parameters (missing {sorted(known - set(p))}, unknown {unknown[:3]}): "
            f"not SB3's ActorCriticPolicy with a diagonal Gaussian"
        )
    action_dim = model.action_shape[0]
    if tuple(p["log_std"].shape) != (action_dim,):
        raise UsageError(
            f"log_std has shape {tuple(p['log_std'].shape)}, not ({action_dim},): only the "
            f"state-independent log-std can be imported"
        )
    spec = {"arch": "mlp", "hidden_sizes": [int(w.shape[0]) for w, _ in pi], "activation": ACTIVATIONS[activation_cls]}
    if [int(w.shape[0]) for w, _ in vf] != spec["hidden_sizes"]:
        spec["critic_hidden_sizes"] = [int(w.shape[0]) for w, _ in vf]
    agent = mujoco_script.Agent(spec, model.obs_shape, action_dim)
    state = {"actor_logstd": p["log_std"].reshape(1, -1)}
    for name, layers, head in (("actor_mean", pi, "action_net"), ("critic", vf, "value_net")):
        for i, (w, b) in enumerate(layers + [(p[f"{head}.weight"], p[f"{head}.bias"])]):
            state[f"{name}.{2 * i}.weight"], state[f"{name}.{2 * i}.bias"] = w, b
    load_exact(agent, state)
    arch = {
        "shared": [int(w.shape[0]) for w, _ in shared],
        "pi": [int(w.shape[0]) for w, _ in pi[len(shared) :]],
        "vf": [int(w.shape[0]) for w, _ in vf[len(shared) :]],
        "activation_fn": activation_cls,
    }
    return agent, arch


def load_exact(agent: torch.nn.Module, state: dict) -> None:
    """Load SB3's tensors into the agent; any shape or name that does not fit is an error, not a silent cast."""
    try:
        agent.load_state_dict({k: v.detach().to(torch.float32).clone() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UsageError(
            f"the SB3 weights do not fit the network they describe: {first[1].strip() if len(first) > 1 else first[0]}"
        )


def load_vecnormalize(path: str):
    if not os.path.isfile(path):
        raise UsageError(f"vec_normalize.pkl not found: {path}")
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        with open(path, "rb") as f:
            vn = pickle.load(f)  # what VecNormalize.load does, without an env to wrap
    except Exception as e:  # noqa: BLE001 (any unpickling failure)
        raise UsageError(f"{path} is not a VecNormalize pickle ({type(e).__name__})")
    if not isinstance(vn, VecNormalize):
        raise UsageError(f"{path} is not a VecNormalize pickle (it holds a {type(vn).__name__})")
    return vn


def mujoco_obs_stats(agent, vn, obs_shape) -> tuple:
    """The frozen statistics (RunningMeanStd state) that make this project's normaliser feed the network what
    VecNormalize fed SB3's, and a description.

    VecNormalize: clip((obs - mean) / sqrt(var + eps), -c, c). This project: clip((obs - mean) / sqrt(var' + 1e-8),
    -10, 10). With sd = sqrt(var + eps) and k = c / 10, storing var' = (sd * k)^2 - 1e-8 gives normalised inputs
    z' = z / k clipped at 10 = (z clipped at c) / k; multiplying the first layer's weights by k undoes the 1/k.
    Both are exact up to float rounding (nothing changes when eps and c are the defaults)."""
    if vn is None or not vn.norm_obs:
        state = {
            "mean": torch.zeros(obs_shape, dtype=torch.float64),
            "var": torch.ones(obs_shape, dtype=torch.float64) - OBS_EPS,
            "count": 1.0,
        }
        return state, {
            "normalized": False,
            "note": f"raw observations (identity statistics), clipped to +-{OBS_CLIP:g}",
        }
    rms = vn.obs_rms
    if isinstance(rms, dict):
        raise UsageError(
            "the VecNormalize pickle normalises a Dict observation space; only flat Box observations can be imported"
        )
    mean, var = np.asarray(rms.mean, np.float64), np.asarray(rms.var, np.float64)
    if mean.shape != tuple(obs_shape) or var.shape != tuple(obs_shape):
        raise UsageError(
            f"the VecNormalize pickle has statistics of shape {mean.shape}, the model observations "
            f"{tuple(obs_shape)}: not the pickle saved with this model"
        )
    eps, clip = float(vn.epsilon), float(vn.clip_obs)
    if not clip > 0 or not eps >= 0:
        raise UsageError(f"the VecNormalize pickle has clip_obs {clip} and epsilon {eps}: not a usable normaliser")
    if eps == OBS_EPS and clip == OBS_CLIP:
        stored = var
    else:
        k = clip / OBS_CLIP
        stored = (var + eps) * k * k - OBS_EPS
        with torch.no_grad():
            agent.actor_mean[0].weight.mul_(k)
            agent.critic[0].weight.mul_(k)
    state = {"mean": torch.as_tensor(mean), "var": torch.as_tensor(stored), "count": float(rms.count)}
    return state, {
        "normalized": True,
        "epsilon": eps,
        "clip_obs": clip,
        "count": float(rms.count),
        "folded_scale": None if stored is var else clip / OBS_CLIP,
    }


# ---------------------------------------------------------------------------------------------
# Atari: CnnPolicy (NatureCNN) -> this project's 'nature' Agent
# ---------------------------------------------------------------------------------------------
def cnn_agent(model: SB3Model) -> tuple:
    kwargs = model.policy_kwargs
    extractor = class_name(kwargs.get("features_extractor_class")) or "NatureCNN"
    if extractor != "NatureCNN":
        raise UsageError(f"unsupported features extractor {extractor}: only SB3's NatureCNN can be imported")
    if kwargs.get("normalize_images", True) is False:
        raise UsageError(
            "the CnnPolicy was built with normalize_images=False; this project's networks divide "
            "pixels by 255 as SB3 does by default"
        )
    if model.action_kind != "Discrete" or model.action_n is None:
        raise UsageError(
            f"unsupported action space {model.action_kind}{model.action_shape}: an Atari teacher has Discrete actions"
        )
    p = model.params
    if any(k.startswith("mlp_extractor.") for k in p):
        raise UsageError(
            "the CnnPolicy has net_arch layers after the CNN; only the default CnnPolicy (NatureCNN "
            "straight into the action and value heads) can be imported"
        )
    # SB3 2.x saves features_extractor (= pi's) and pi_/vf_features_extractor; older versions only the first.
    trunks = {}
    for side in ("pi", "vf"):
        prefix = (
            f"{side}_features_extractor" if f"{side}_features_extractor.linear.0.weight" in p else "features_extractor"
        )
        trunks[side] = {
            name: p.get(f"{prefix}.{name}")
            for name in (
                "cnn.0.weight",
                "cnn.0.bias",
                "cnn.2.weight",
                "cnn.2.bias",
                "cnn.4.weight",
                "cnn.4.bias",
                "linear.0.weight",
                "linear.0.bias",
            )
        }
        if any(v is None for v in trunks[side].values()):
            raise UsageError(f"unexpected CnnPolicy parameters: no NatureCNN under '{prefix}'")
    allowed = re.compile(
        r"((pi_|vf_)?features_extractor\.(cnn\.[024]|linear\.0)\.(weight|bias)|(action|value)_net\.(weight|bias))"
    )
    unknown = sorted(k for k in p if not allowed.fullmatch(k))
    if unknown or not {"action_net.weight", "value_net.weight"} <= set(p):
        raise UsageError(f"unexpected CnnPolicy parameters {unknown[:3]}: not SB3's NatureCNN actor-critic")
    t = trunks["pi"]
    kernels = [tuple(t[f"cnn.{i}.weight"].shape[2:]) for i in (0, 2, 4)]
    if kernels != [(8, 8), (4, 4), (3, 3)]:
        raise UsageError(f"conv kernels {kernels} are not NatureCNN's 8x8, 4x4, 3x3")
    # one trunk when SB3's actor and critic had one (share_features_extractor, its default): --student same then
    # builds that network; two when each side trained its own
    shared = all(torch.equal(trunks["pi"][k], trunks["vf"][k]) for k in trunks["pi"])
    spec = atari_script.network_spec(
        "nature",
        [int(t[f"cnn.{i}.weight"].shape[0]) for i in (0, 2, 4)],
        int(t["linear.0.weight"].shape[0]),
        shared_trunk=shared,
    )
    agent = atari_script.Agent(spec, model.obs_shape, model.action_n)
    state = {}
    # Agent: actor = Sequential(trunk, head); trunk = Sequential(convs, Linear, ReLU); convs = conv, ReLU, conv,
    # ReLU, conv, ReLU, Flatten: the same layers, in the same order, as NatureCNN's cnn and linear.
    for name, side, head in (("actor", "pi", "action_net"), ("critic", "vf", "value_net")):
        for i in (0, 2, 4):
            for kind in ("weight", "bias"):
                state[f"{name}.0.0.{i}.{kind}"] = trunks[side][f"cnn.{i}.{kind}"]
        for kind in ("weight", "bias"):
            state[f"{name}.0.1.{kind}"] = trunks[side][f"linear.0.{kind}"]
            state[f"{name}.1.{kind}"] = p[f"{head}.{kind}"]
    load_exact(agent, state)
    arch = {
        "features_extractor": "NatureCNN",
        "channels": spec["channels"],
        "features_dim": spec["fc_size"],
        "share_features_extractor": bool(kwargs.get("share_features_extractor", True)),
        "shared_trunk": shared,
    }
    return agent, arch


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------
def resolve_env(env_id: str) -> tuple:
    """(suite, canonical env id, script module)."""
    for suite, script in (("mujoco", mujoco_script), ("atari", atari_script)):
        try:
            return suite, script.canonical_env_id(env_id), script
        except script.UsageError:
            continue
    raise UsageError(
        f"unknown env id '{env_id}': neither a Mujoco v4 task (Hopper, Ant, HalfCheetah, Humanoid, "
        f"Swimmer, ...) nor an envpool Atari game (Pong, Breakout, ...)"
    )


def env_spaces(suite: str, env_id: str, max_episode_steps: int) -> tuple:
    """(observation shape, action dim) of this project's env for env_id."""
    if suite == "mujoco":
        envs, _ = mujoco_script.make_env(env_id, 1, 0)
        shape, action_dim = envs.single_observation_space.shape, envs.single_action_space.shape[0]
    else:
        envs = atari_script.make_env(env_id, 1, 0, max_episode_steps)
        shape, action_dim = envs.observation_space.shape, envs.action_space.n
    envs.close()
    return tuple(int(d) for d in shape), int(action_dim)


def import_model(args: Args) -> dict:
    for name in ("eval_envs", "max_episode_steps"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.eval_episodes < 0:
        raise UsageError(f"--eval-episodes must not be negative, got {args.eval_episodes}")
    suite, env_id, script = resolve_env(args.env_id)
    teacher_path = os.path.join(args.teachers_dir, f"{env_id}__{args.seed}.pt")
    json_path = teacher_path[:-3] + ".json"
    for path in (teacher_path, json_path):
        if os.path.exists(path) and not args.overwrite:
            raise UsageError(f"{path} exists; pass --overwrite to replace it (or another --seed)")
    try:
        import stable_baselines3  # noqa: F401  (the only module that needs it)
    except ImportError:
        raise UsageError("stable-baselines3 is not installed (pip install stable-baselines3==2.9.2)")

    model = read_sb3_zip(args.model)
    model_suite = POLICY_CLASSES[model.policy_class]
    if model_suite != suite:
        raise UsageError(f"{args.model} is a {model_suite} model ({model.policy_class}), but {env_id} is a {suite} env")
    obs_shape, action_dim = env_spaces(suite, env_id, args.max_episode_steps)
    if model.obs_shape != obs_shape:
        hint = (
            " (rl-baselines3-zoo's older v3 Mujoco models observe more: Ant-v3 111 values, Ant-v4 27)"
            if suite == "mujoco"
            else " (this project stacks 4 grayscale 84x84 frames, channels first)"
        )
        raise UsageError(f"the model observes shape {model.obs_shape}, this project's {env_id} {obs_shape}{hint}")
    model_actions = model.action_n if suite == "atari" else (model.action_shape or (0,))[0]
    if model_actions != action_dim:
        raise UsageError(f"the model has {model_actions} actions, this project's {env_id} {action_dim}")

    if suite == "mujoco":
        agent, arch = mlp_agent(model)
        vn = load_vecnormalize(args.vecnormalize) if args.vecnormalize else None
        obs_rms, normalization = mujoco_obs_stats(agent, vn, obs_shape)
        obs_norm = mujoco_script.ObsNormalizer(obs_shape, OBS_CLIP)
        obs_norm.rms.load_state_dict(obs_rms)
        script_args = mujoco_script.Args(
            env_id=env_id,
            seed=args.seed,
            hidden_sizes=tuple(agent.spec["hidden_sizes"]),
            total_timesteps=model.num_timesteps,
            teachers_dir=args.teachers_dir,
            eval_episodes=args.eval_episodes,
            eval_envs=args.eval_envs,
        )
    else:
        if args.vecnormalize:
            vn = load_vecnormalize(args.vecnormalize)
            if vn.norm_obs:
                raise UsageError(
                    "an Atari model with observation normalisation (VecNormalize norm_obs=True) is not "
                    "supported: this project's Atari networks take raw pixels / 255"
                )
        agent, arch = cnn_agent(model)
        obs_norm, normalization = None, {"normalized": False, "note": "pixels / 255 inside the network, as SB3"}
        spec = agent.spec
        script_args = atari_script.Args(
            env_id=env_id,
            seed=args.seed,
            arch="nature",
            channels=tuple(spec["channels"]),
            fc_size=spec["fc_size"],
            shared_trunk=spec["shared_trunk"],
            total_timesteps=model.num_timesteps,
            max_episode_steps=args.max_episode_steps,
            teachers_dir=args.teachers_dir,
            eval_episodes=args.eval_episodes,
            eval_envs=args.eval_envs,
        )
    script_args.exp_name = "import_sb3"

    source = {
        "tool": SCRIPT,
        "file": os.path.abspath(args.model),
        "sha256": mujoco_script.sha256_of(args.model),
        "sb3_version": model.sb3_version,
        "algorithm": model.algorithm,
        "policy_class": model.policy_class,
        "architecture": arch,
        "num_timesteps": model.num_timesteps,
        "vecnormalize": None
        if not args.vecnormalize
        else {"file": os.path.abspath(args.vecnormalize), "sha256": mujoco_script.sha256_of(args.vecnormalize)},
        "observation_normalization": normalization,
    }

    # Write the checkpoint under a temporary name, read it back as the distillation scripts will, evaluate
    # that, and only then give it its name: a failure leaves nothing behind.
    tmp_path, json_tmp = f"{teacher_path}.import{os.getpid()}", f"{json_path}.import{os.getpid()}"
    try:
        script.save_checkpoint(tmp_path, agent, script_args, obs_norm, model.num_timesteps, 0)
        state = torch.load(tmp_path, map_location="cpu", weights_only=True)
        state["source"] = source  # provenance travels with the .pt, too
        script.atomic_write(tmp_path, lambda tmp: torch.save(state, tmp))
        loaded = script.load_checkpoint(tmp_path)
        teacher = script.agent_from_checkpoint(loaded)
        device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
        teacher = teacher.to(device).eval()
        evaluation = None
        if args.eval_episodes > 0:
            if suite == "mujoco":
                eval_norm = mujoco_script.ObsNormalizer(tuple(loaded["obs_shape"]), OBS_CLIP)
                eval_norm.rms.load_state_dict(loaded["obs_rms"])
                evaluation = script.evaluate(
                    teacher,
                    script_args,
                    eval_norm,
                    args.eval_episodes,
                    args.eval_envs,
                    seed=args.seed + 10_000,
                    device=device,
                )
            else:
                evaluation = script.evaluate(
                    teacher,
                    script_args,
                    None,
                    args.eval_episodes,
                    args.eval_envs,
                    seed=args.seed + 10_000,
                    device=device,
                )
        result = {
            "script": SCRIPT,
            "method": model.algorithm.lower(),
            "suite": suite,
            "env_id": env_id,
            "seed": args.seed,
            "total_timesteps": model.num_timesteps,
            "student_size": None,
            "policy_params": teacher.policy_params(),
            "evaluation": evaluation,
            "evaluation_train_levels": None,
            "source": source,
            "checkpoint_sha256": mujoco_script.sha256_of(tmp_path),
        }
        script.write_json(json_tmp, result)
        os.replace(tmp_path, teacher_path)  # the two renames last: both files, or neither
        os.replace(json_tmp, json_path)
    finally:
        for path in (tmp_path, json_tmp):
            if os.path.exists(path):
                os.remove(path)
    episodes = f"{args.eval_episodes} episode{'' if args.eval_episodes == 1 else 's'}"
    score = f", mean return {evaluation['mean']:.1f} over {episodes}" if evaluation else ""
    print(f"imported {model.algorithm} {model.policy_class} -> {teacher_path}{score}")
    return result


def main() -> None:
    args = tyro.cli(Args)
    try:
        import_model(args)
    except (UsageError, mujoco_script.UsageError, atari_script.UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run_main(main)
