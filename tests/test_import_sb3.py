"""tools/import_sb3.py: real stable-baselines3 models (trained here for a few thousand steps, or freshly
initialised) and their imports compute the same action distribution and value on the same observations; the
imported Mujoco teacher drives ppd_mujoco.py; bad input is one line, exit 2, nothing written."""

import io
import json
import os
import sys
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ROOT, TINY, one_error_line, read_json, run_cli, run_main, run_script, sha256

import stable_baselines3  # noqa: E402,F401  (pinned in requirements.txt: missing is a failure, not a skip)
from stable_baselines3 import A2C, PPO, SAC  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
import import_sb3  # noqa: E402
import ppd_atari  # noqa: E402
import ppd_mujoco  # noqa: E402

TEACHER_KEYS = set(read_json(os.path.join(ROOT, "teachers", "Hopper-v4__1.json")))  # the teacher scripts' eval.json
EVAL = ["--eval-episodes", "2", "--eval-envs", "2"]


def hopper_raw_observations(n: int = 300) -> np.ndarray:
    """Real Hopper-v4 observations from random actions, and the same scaled up, so that clipping is exercised."""
    env = gym.make("Hopper-v4")
    obs, _ = env.reset(seed=3)
    rows = []
    for _ in range(n):
        rows.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    raw = np.array(rows)
    return np.concatenate([raw, raw[:50] * 40.0])


def sb3_gaussian(model, x: np.ndarray):
    """SB3's mean, std and value on observations as its policy receives them."""
    with torch.no_grad():
        t = torch.as_tensor(x, dtype=torch.float32)
        dist = model.policy.get_distribution(t).distribution
        return dist.mean.numpy(), dist.stddev.numpy(), model.policy.predict_values(t).squeeze(-1).numpy()


def imported_gaussian(path, raw: np.ndarray):
    """The imported teacher's mean, std and value on raw observations, loaded as ppd_mujoco.py loads it."""
    state = ppd_mujoco.load_checkpoint(str(path))
    agent = ppd_mujoco.agent_from_checkpoint(state)
    norm = ppd_mujoco.ObsNormalizer(tuple(state["obs_shape"]), ppd_mujoco.Args.obs_clip)
    norm.rms.load_state_dict(state["obs_rms"])
    with torch.no_grad():
        x = torch.as_tensor(norm(raw, update=False))
        dist = agent.get_dist(x)
        return dist.mean.numpy(), dist.stddev.numpy(), agent.get_value(x).numpy(), state


def to_pre_1_8_layout(src, dst) -> None:
    """Rewrite an SB3 2.x zip whose pi and vf first layers are identical into SB3 < 1.8's layout of a shared
    layer (net_arch=[w, dict(pi=[...], vf=[...])]): mlp_extractor.shared_net.0, then policy_net.0, value_net.0."""
    with zipfile.ZipFile(src) as zin:
        entries = {name: zin.read(name) for name in zin.namelist()}
    params = torch.load(io.BytesIO(entries["policy.pth"]), weights_only=True)
    out = {}
    for key, value in params.items():
        if key.startswith("mlp_extractor.policy_net.0."):
            out[key.replace("policy_net.0.", "shared_net.0.")] = value
        elif key.startswith("mlp_extractor.value_net.0."):
            continue  # equal to policy_net.0: the shared layer
        elif key.startswith(("mlp_extractor.policy_net.2.", "mlp_extractor.value_net.2.")):
            out[key.replace(".2.", ".0.")] = value
        else:
            out[key] = value
    buffer = io.BytesIO()
    torch.save(out, buffer)
    entries["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in entries.items():
            zout.writestr(name, data)


@pytest.fixture(scope="module")
def sb3_models(tmp_path_factory):
    """Real SB3 Hopper-v4 models and their VecNormalize pickles."""
    work = tmp_path_factory.mktemp("sb3")
    torch.manual_seed(0)
    models = {}
    # PPO, SB3's default Tanh, critic widths other than the actor's, VecNormalize with a non-default epsilon
    # and clip (folded into the statistics), trained 2,048 steps.
    venv = VecNormalize(make_vec_env("Hopper-v4", n_envs=2, seed=0), clip_obs=3.0, epsilon=1e-4)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=512,
        batch_size=128,
        n_epochs=2,
        seed=0,
        policy_kwargs=dict(net_arch=dict(pi=[32, 16], vf=[24])),
    )
    model.learn(2048)
    model.save(work / "ppo_tanh.zip")
    venv.save(str(work / "ppo_tanh_vecnormalize.pkl"))
    models["ppo_tanh"] = (model, venv)
    # A2C, ReLU, VecNormalize's defaults (the same formula as this project's), trained 2,000 steps.
    venv = VecNormalize(make_vec_env("Hopper-v4", n_envs=2, seed=1))
    model = A2C("MlpPolicy", venv, seed=1, policy_kwargs=dict(net_arch=[16, 16], activation_fn=torch.nn.ReLU))
    model.learn(2000)
    model.save(work / "a2c_relu.zip")
    venv.save(str(work / "a2c_relu_vecnormalize.pkl"))
    models["a2c_relu"] = (model, venv)
    # PPO with a layer shared by actor and critic (SB3 < 1.8), freshly initialised, no VecNormalize.
    model = PPO("MlpPolicy", "Hopper-v4", seed=2, policy_kwargs=dict(net_arch=dict(pi=[16, 8], vf=[16, 12])))
    with torch.no_grad():
        extractor = model.policy.mlp_extractor
        extractor.value_net[0].weight.copy_(extractor.policy_net[0].weight)
        extractor.value_net[0].bias.copy_(extractor.policy_net[0].bias)
    model.save(work / "ppo_shared_2x.zip")
    to_pre_1_8_layout(work / "ppo_shared_2x.zip", work / "ppo_shared.zip")
    models["ppo_shared"] = (model, None)
    return work, models


@pytest.mark.parametrize("kind", ["ppo_tanh", "a2c_relu", "ppo_shared"])
def test_mujoco_import_is_exact(kind, sb3_models, tmp_path, capsys, monkeypatch):
    work, models = sb3_models
    model, venv = models[kind]
    teachers = tmp_path / "teachers"
    argv = ["--model", work / f"{kind}.zip", "--env-id", "Hopper", "--seed", "7", "--teachers-dir", teachers, *EVAL]
    if venv is not None:
        argv += ["--vecnormalize", work / f"{kind}_vecnormalize.pkl"]
    code, out, err = run_cli(import_sb3, argv, capsys, monkeypatch)
    assert code == 0, err
    path = teachers / "Hopper-v4__7.pt"
    assert sorted(os.listdir(teachers)) == ["Hopper-v4__7.json", "Hopper-v4__7.pt"]

    raw = hopper_raw_observations()
    sb3_obs = venv.normalize_obs(raw) if venv is not None else raw[:300]  # without statistics: unclipped range only
    raw = raw if venv is not None else raw[:300]
    sb3_mean, sb3_std, sb3_value = sb3_gaussian(model, sb3_obs)
    mean, std, value, state = imported_gaussian(path, raw)
    if venv is not None:
        assert (np.abs(sb3_obs) >= venv.clip_obs).any()  # clipping was exercised
    np.testing.assert_allclose(mean, sb3_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, sb3_std, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(value, sb3_value, rtol=1e-5, atol=1e-5)
    assert np.abs(sb3_mean).max() > 1e-3  # not trivially zero outputs

    spec = state["network"]
    expected = {
        "ppo_tanh": ([32, 16], [24], "tanh"),
        "a2c_relu": ([16, 16], None, "relu"),
        "ppo_shared": ([16, 8], [16, 12], "tanh"),
    }[kind]
    assert (spec["hidden_sizes"], spec.get("critic_hidden_sizes"), spec["activation"]) == expected
    assert state["suite"] == "mujoco" and state["env_id"] == "Hopper-v4" and state["obs_shape"] == [11]
    assert state["source"]["sha256"] == sha256(work / f"{kind}.zip")

    result = read_json(teachers / "Hopper-v4__7.json")
    assert set(result) == TEACHER_KEYS | {"source", "checkpoint_sha256"}
    assert result["checkpoint_sha256"] == sha256(path)
    assert result["env_id"] == "Hopper-v4" and result["seed"] == 7 and result["suite"] == "mujoco"
    assert result["method"] == ("a2c" if kind == "a2c_relu" else "ppo")
    assert result["total_timesteps"] == model.num_timesteps
    assert result["policy_params"] == ppd_mujoco.agent_from_checkpoint(state).policy_params()
    evaluation = result["evaluation"]
    assert evaluation["episodes"] == 2 and len(evaluation["returns"]) == 2 and evaluation["deterministic"]
    assert evaluation["mean"] == pytest.approx(np.mean(evaluation["returns"]))
    source = result["source"]
    assert source["algorithm"] == ("A2C" if kind == "a2c_relu" else "PPO")
    assert source["policy_class"] == "ActorCriticPolicy" and source["sb3_version"]
    assert source["architecture"]["shared"] == ([16] if kind == "ppo_shared" else [])
    normalization = source["observation_normalization"]
    assert normalization["normalized"] == (venv is not None)
    if kind == "ppo_tanh":
        assert normalization["epsilon"] == 1e-4 and normalization["clip_obs"] == 3.0
        assert normalization["folded_scale"] == pytest.approx(0.3)
    assert f"-> {teachers}/Hopper-v4__7.pt" in out


def test_unpicklable_spaces_and_kwargs_are_read_from_the_json(sb3_models, tmp_path, capsys, monkeypatch):
    """Models saved by other Python / library versions often do not unpickle; the zip's JSON names the same
    spaces and classes in readable form, and the import uses it."""
    work, models = sb3_models
    model, venv = models["a2c_relu"]
    with zipfile.ZipFile(work / "a2c_relu.zip") as zin:
        entries = {name: zin.read(name) for name in zin.namelist()}
    data = json.loads(entries["data"])
    for key in ("policy_kwargs", "observation_space", "action_space"):
        data[key][":serialized:"] = "AAAA"  # not a pickle
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(tmp_path / "old.zip", "w") as zout:
        for name, content in entries.items():
            zout.writestr(name, content)
    code, _, err = run_cli(
        import_sb3,
        [
            "--model",
            tmp_path / "old.zip",
            "--vecnormalize",
            work / "a2c_relu_vecnormalize.pkl",
            "--env-id",
            "Hopper",
            "--teachers-dir",
            tmp_path / "teachers",
            "--eval-episodes",
            "0",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    raw = hopper_raw_observations(100)
    mean, _, value, state = imported_gaussian(tmp_path / "teachers" / "Hopper-v4__1.pt", raw)
    assert state["network"]["activation"] == "relu" and state["action_dim"] == 3
    sb3_mean, _, sb3_value = sb3_gaussian(model, venv.normalize_obs(raw))
    np.testing.assert_allclose(mean, sb3_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, sb3_value, rtol=1e-5, atol=1e-5)


def test_existing_teacher_is_kept_unless_overwrite(sb3_models, tmp_path, capsys, monkeypatch):
    work, _ = sb3_models
    teachers = tmp_path / "teachers"
    argv = [
        "--model",
        work / "a2c_relu.zip",
        "--vecnormalize",
        work / "a2c_relu_vecnormalize.pkl",
        "--env-id",
        "Hopper-v4",
        "--teachers-dir",
        teachers,
        "--eval-episodes",
        "0",
    ]
    assert run_cli(import_sb3, argv, capsys, monkeypatch)[0] == 0
    assert read_json(teachers / "Hopper-v4__1.json")["evaluation"] is None
    before = sha256(teachers / "Hopper-v4__1.pt")
    code, out, err = run_cli(
        import_sb3,
        ["--model", work / "ppo_tanh.zip", "--vecnormalize", work / "ppo_tanh_vecnormalize.pkl", *argv[4:]],
        capsys,
        monkeypatch,
    )
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "--overwrite" in err
    assert sha256(teachers / "Hopper-v4__1.pt") == before
    code, _, err = run_cli(
        import_sb3,
        [
            "--model",
            work / "ppo_tanh.zip",
            "--vecnormalize",
            work / "ppo_tanh_vecnormalize.pkl",
            *argv[4:],
            "--overwrite",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert sha256(teachers / "Hopper-v4__1.pt") != before
    assert read_json(teachers / "Hopper-v4__1.json")["checkpoint_sha256"] == sha256(teachers / "Hopper-v4__1.pt")
    assert sorted(os.listdir(teachers)) == ["Hopper-v4__1.json", "Hopper-v4__1.pt"]


def test_imported_teacher_drives_ppd_mujoco(sb3_models, tmp_path, capsys, monkeypatch):
    """End to end: PPD distils the imported A2C teacher; the teacher outputs it logged are SB3's."""
    work, models = sb3_models
    model, venv = models["a2c_relu"]
    argv = [
        "--model",
        work / "a2c_relu.zip",
        "--vecnormalize",
        work / "a2c_relu_vecnormalize.pkl",
        "--env-id",
        "Hopper",
        "--teachers-dir",
        tmp_path / "teachers",
        *EVAL,
    ]
    assert run_cli(import_sb3, argv, capsys, monkeypatch)[0] == 0
    proc = run_main(
        "ppd_mujoco.py",
        [*TINY["mujoco"], "--total-timesteps", 512, "--student", "smaller", "--run-name", "ppd", "--dump-last-rollout"],
        cwd=tmp_path,
    )
    assert "teacher evaluation" in proc.stdout
    result = read_json(tmp_path / "runs" / "ppd" / "eval.json")
    assert result["method"] == "ppd" and result["teacher"]["path"] == "teachers/Hopper-v4__1.pt"
    assert len(result["teacher"]["evaluation"]["returns"]) == 2 and len(result["evaluation"]["returns"]) == 2
    rollout = torch.load(tmp_path / "runs" / "ppd" / "last_rollout.pt", weights_only=True)
    valid = rollout["valid"].reshape(-1) > 0
    obs = rollout["obs"].reshape(-1, 11)[valid].numpy()  # normalised as VecNormalize does (default eps and clip)
    sb3_mean = sb3_gaussian(model, obs)[0]
    np.testing.assert_allclose(rollout["teacher_means"].reshape(-1, 3)[valid].numpy(), sb3_mean, rtol=1e-5, atol=1e-5)


class SpacesOf(gym.Env):
    """SB3 builds a model from an env's spaces; this one holds envpool Pong's and is never stepped."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space


@pytest.mark.parametrize("share", [True, False])
def test_atari_import_is_exact(share, tmp_path, capsys, monkeypatch):
    envs = ppd_atari.make_env("Pong-v5", 4, seed=5, max_episode_steps=1000)
    obs, _ = envs.reset()
    frames, rng = [], np.random.default_rng(0)
    for _ in range(40):
        frames.append(obs)
        obs, *_ = envs.step(rng.integers(0, envs.action_space.n, 4))
    spaces = SpacesOf(
        gym.spaces.Box(0, 255, envs.observation_space.shape, np.uint8), gym.spaces.Discrete(int(envs.action_space.n))
    )
    envs.close()
    frames = np.concatenate(frames)
    assert frames.shape == (160, 4, 84, 84) and frames.dtype == np.uint8

    model = PPO("CnnPolicy", spaces, seed=3, policy_kwargs=dict(share_features_extractor=share))
    model.save(tmp_path / "ppo_pong.zip")
    teachers = tmp_path / "teachers"
    code, _, err = run_cli(
        import_sb3,
        [
            "--model",
            tmp_path / "ppo_pong.zip",
            "--env-id",
            "Pong",
            "--teachers-dir",
            teachers,
            *EVAL,
            "--max-episode-steps",
            "50",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    state = ppd_atari.load_checkpoint(str(teachers / "Pong-v5__1.pt"))
    agent = ppd_atari.agent_from_checkpoint(state)
    assert state["network"] == {"arch": "nature", "channels": [32, 64, 64], "fc_size": 512, "shared_trunk": share}
    assert (agent.actor[0] is agent.critic[0]) is share  # SB3's one extractor is one trunk here too
    assert state["obs_rms"] is None and state["obs_shape"] == [4, 84, 84]
    with torch.no_grad():
        t = model.policy.obs_to_tensor(frames)[0]
        sb3_logits = model.policy.get_distribution(t).distribution.logits.numpy()
        sb3_values = model.policy.predict_values(t).squeeze(-1).numpy()
        x = torch.as_tensor(frames)
        logits, values = agent.get_dist(x).logits.numpy(), agent.get_value(x).numpy()
    np.testing.assert_allclose(logits, sb3_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, sb3_values, rtol=1e-5, atol=1e-6)
    assert np.ptp(sb3_values) > 0  # the frames differ, and so do the outputs

    result = read_json(teachers / "Pong-v5__1.json")
    assert set(result) == TEACHER_KEYS | {"source", "checkpoint_sha256"}
    assert result["suite"] == "atari" and result["env_id"] == "Pong-v5"
    assert result["checkpoint_sha256"] == sha256(teachers / "Pong-v5__1.pt")
    assert result["source"]["policy_class"] == "ActorCriticCnnPolicy"
    assert result["source"]["architecture"]["share_features_extractor"] is share
    assert result["source"]["architecture"]["shared_trunk"] is share
    assert len(result["evaluation"]["returns"]) == 2 and result["evaluation"]["human_normalized"] is not None


def bad_input_cases(work, tmp):
    (tmp / "notes.txt").write_text("not a model\n")
    with zipfile.ZipFile(tmp / "other.zip", "w") as z:
        z.writestr("readme.txt", "a zip, but not an SB3 model")
    SAC("MlpPolicy", "Hopper-v4", seed=0).save(tmp / "sac.zip")
    PPO("MlpPolicy", "Hopper-v4", seed=0, use_sde=True).save(tmp / "ppo_sde.zip")
    PPO("MlpPolicy", "InvertedPendulum-v4", seed=0).save(tmp / "ppo_pendulum.zip")
    VecNormalize(make_vec_env("InvertedPendulum-v4", n_envs=1)).save(str(tmp / "pendulum_vecnormalize.pkl"))
    hopper = ["--env-id", "Hopper"]
    return {
        "not a zip": ([*hopper, "--model", tmp / "notes.txt"], "not a stable-baselines3 model zip"),
        "not an SB3 zip": ([*hopper, "--model", tmp / "other.zip"], "not a stable-baselines3 model zip"),
        "missing model": ([*hopper, "--model", tmp / "nowhere.zip"], "model not found"),
        "SAC": (
            [*hopper, "--model", tmp / "sac.zip"],
            "unsupported policy class stable_baselines3.sac.policies.SACPolicy",
        ),
        "gSDE": ([*hopper, "--model", tmp / "ppo_sde.zip"], "gSDE"),
        "other task": ([*hopper, "--model", tmp / "ppo_pendulum.zip"], "observes shape (4,)"),
        "Mlp model for Atari": (
            ["--env-id", "Pong", "--model", work / "a2c_relu.zip"],
            "is a mujoco model (ActorCriticPolicy)",
        ),
        "missing pkl": (
            [*hopper, "--model", work / "a2c_relu.zip", "--vecnormalize", tmp / "none.pkl"],
            "vec_normalize.pkl not found",
        ),
        "pkl of another task": (
            [*hopper, "--model", work / "a2c_relu.zip", "--vecnormalize", tmp / "pendulum_vecnormalize.pkl"],
            "not the pickle saved with this model",
        ),
        "not a pkl": (
            [*hopper, "--model", work / "a2c_relu.zip", "--vecnormalize", tmp / "notes.txt"],
            "is not a VecNormalize pickle",
        ),
        "unknown env": (["--env-id", "Nowhere", "--model", work / "a2c_relu.zip"], "unknown env id 'Nowhere'"),
    }


def test_bad_input_is_one_line_exit_2_nothing_written(sb3_models, tmp_path, capsys, monkeypatch):
    work, _ = sb3_models
    for name, (argv, message) in bad_input_cases(work, tmp_path).items():
        teachers = tmp_path / f"teachers_{name.replace(' ', '_')}"
        code, out, err = run_cli(import_sb3, [*argv, "--teachers-dir", teachers, *EVAL], capsys, monkeypatch)
        one_error_line(err, code, message)
        assert not teachers.exists() or os.listdir(teachers) == [], name
    # A fresh process, as a user runs it: still one line (no import banners), exit 2.
    proc = run_script(
        "tools/import_sb3.py",
        ["--model", tmp_path / "sac.zip", "--env-id", "Hopper", "--teachers-dir", tmp_path / "teachers_cli"],
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: unsupported policy class") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "teachers_cli").exists()
