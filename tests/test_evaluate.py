"""tools/evaluate.py: re-evaluation equals the scripts' own final evaluation, the ale-py pipeline equals envpool's,
real MP4s read back, bad input."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from conftest import (
    CANONICAL,
    ROOT,
    TINY,
    committed_teachers,
    one_error_line,
    read_json,
    run_cli,
    run_main,
    run_script,
    sha256,
)
from test_pixels import FAVOURED, decisive_teacher

sys.path.insert(0, os.path.join(ROOT, "tools"))
import evaluate as ev  # noqa: E402

with contextlib.redirect_stderr(io.StringIO()):
    import envpool  # noqa: E402

# envpool resizes with OpenCV's INTER_AREA in its own float arithmetic; ours rounds the same weighted means, so
# a pixel may differ by one grey level where a mean lands next to .5.
RESIZE_TOLERANCE = 1


def tool(argv, capsys, monkeypatch):
    # the tool sets MUJOCO_GL=egl when unset; monkeypatch undoes that after the test
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    return run_cli(ev, argv, capsys, monkeypatch)


def read_video(path):
    """(frames as uint8 RGB arrays, fps) of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, stream.average_rate


def assert_real_video(path, frames_expected, width, height):
    frames, fps = read_video(path)
    assert len(frames) == frames_expected and fps > 0
    assert all(f.shape == (height, width, 3) for f in frames)
    stack = np.stack(frames).astype(np.float32)
    assert stack.std() > 10 and all(f.std() > 5 for f in stack)  # not blank, nor a flat colour
    # in colour: a grey video has R = G = B up to compression noise; these scenes have coloured bodies
    saturation = stack.max(axis=-1) - stack.min(axis=-1)
    assert (saturation > 40).mean() > 0.005
    return frames


# Software EGL renders a 480x480 Mujoco frame in about 70 ms on this machine, so the video tests film a barely
# trained InvertedPendulum (episodes of 20-30 steps) rather than Hopper.
PENDULUM = ["--env-id", "InvertedPendulum", "--num-envs", "4", "--eval-episodes", "2", "--eval-envs", "2"]


@pytest.fixture(scope="module")
def runs(teacher_runs, tmp_path_factory):
    """The shared tiny teachers, plus: a tiny InvertedPendulum teacher and a student-distill run from it, and a
    tiny PPD run on Procgen with deterministic evaluation (the Procgen scripts sample by default, from their
    training RNG stream, which no other process can reproduce)."""
    work = tmp_path_factory.mktemp("evaluate_runs")
    procgen_teacher = teacher_runs["procgen"][0] / "teachers" / "starpilot__1.pt"
    run_main(
        "ppo_teacher_mujoco.py",
        [
            *PENDULUM,
            "--num-steps",
            "64",
            "--minibatch-size",
            "64",
            "--hidden-sizes",
            "32",
            "32",
            "--total-timesteps",
            256,
            "--run-name",
            "pendulum",
        ],
        cwd=work,
    )
    mujoco_teacher = work / "teachers" / "InvertedPendulum-v4__1.pt"
    run_main(
        "student_distill.py",
        [
            *PENDULUM,
            "--num-steps",
            "8",
            "--total-timesteps",
            64,
            "--student",
            "smaller",
            "--teacher-path",
            mujoco_teacher,
            "--run-name",
            "sd",
        ],
        cwd=work,
    )
    run_main(
        "ppd_procgen.py",
        [
            *TINY["procgen"],
            "--num-steps",
            "16",
            "--total-timesteps",
            64,
            "--student",
            "smaller",
            "--teacher-path",
            procgen_teacher,
            "--run-name",
            "ppd",
        ],
        cwd=work,
    )
    return {
        "mujoco": teacher_runs["mujoco"][0] / "runs" / "tiny",
        "atari": teacher_runs["atari"][0] / "runs" / "tiny",
        "procgen_teacher": procgen_teacher,
        "mujoco_teacher": mujoco_teacher,
        "pendulum": work / "runs" / "pendulum",
        "sd": work / "runs" / "sd",
        "ppd_procgen": work / "runs" / "ppd",
    }


@pytest.mark.parametrize("suite", ["mujoco", "atari"])
def test_equals_the_teacher_scripts_final_evaluation(suite, runs, tmp_path, capsys, monkeypatch):
    run_dir = runs[suite]
    out = tmp_path / "e.json"
    code, stdout, _ = tool(
        ["--checkpoint", run_dir / "checkpoint.pt", "--episodes", 2, "--out", out], capsys, monkeypatch
    )
    assert code == 0 and "mean return" in stdout
    result, script_eval = read_json(out), read_json(run_dir / "eval.json")
    assert result["evaluation"] == script_eval["evaluation"]  # every return, bit for bit
    assert result["seed"] == 1 + 10_000 and result["num_envs"] == 2 and result["suite"] == suite
    assert result["env_id"] == CANONICAL[suite] and result["method"] == "ppo" and result["videos"] == []
    assert result["checkpoint"] == str(run_dir / "checkpoint.pt")
    assert result["sha256"] == sha256(run_dir / "checkpoint.pt")
    assert result["policy_params"] == script_eval["policy_params"]


def test_equals_student_distill_and_its_teacher_evaluation(runs, tmp_path, capsys, monkeypatch):
    script_eval = read_json(runs["sd"] / "eval.json")
    code, _, _ = tool(
        ["--checkpoint", runs["sd"] / "checkpoint.pt", "--episodes", 2, "--out", tmp_path / "s.json"],
        capsys,
        monkeypatch,
    )
    assert code == 0
    result = read_json(tmp_path / "s.json")
    assert result["evaluation"] == script_eval["evaluation"]
    assert result["method"] == "student_distill" and result["student_size"] == "smaller"
    # the teacher file, evaluated by the tool, gives the teacher block the student's run wrote (same protocol)
    code, _, _ = tool(
        ["--checkpoint", runs["mujoco_teacher"], "--episodes", 2, "--out", tmp_path / "t.json"], capsys, monkeypatch
    )
    assert code == 0 and read_json(tmp_path / "t.json")["evaluation"] == script_eval["teacher"]["evaluation"]


def test_procgen_test_and_train_levels_equal_ppd(runs, tmp_path, capsys, monkeypatch):
    """The paper's Procgen protocol samples actions: an evaluation draws them from its own RNG stream seeded
    with its seed, so the tool repeats the run's sampled evaluations exactly, on both level sets."""
    script_eval = read_json(runs["ppd_procgen"] / "eval.json")
    checkpoint = runs["ppd_procgen"] / "checkpoint.pt"
    for levels, key in (("test", "evaluation"), ("train", "evaluation_train_levels")):
        out = tmp_path / f"{levels}.json"
        code, stdout, _ = tool(
            ["--checkpoint", checkpoint, "--episodes", 2, "--levels", levels, "--out", out], capsys, monkeypatch
        )
        assert code == 0 and f"{levels} levels" in stdout
        assert read_json(out)["evaluation"] == script_eval[key]
        assert script_eval[key]["levels"] == levels and script_eval[key]["deterministic"] is False


def test_procgen_defaults_are_the_papers_and_sampling_is_reproducible(runs, tmp_path, capsys, monkeypatch):
    # default protocol: 200 episodes, sampled, test levels; here 3 episodes to keep it short, 2 envs
    results = []
    for name in ("a", "b"):
        code, _, _ = tool(
            [
                "--checkpoint",
                runs["procgen_teacher"],
                "--episodes",
                3,
                "--num-envs",
                2,
                "--seed",
                7,
                "--out",
                tmp_path / f"{name}.json",
            ],
            capsys,
            monkeypatch,
        )
        assert code == 0
        results.append(read_json(tmp_path / f"{name}.json"))
    a, b = results
    assert a["evaluation"]["deterministic"] is False and a["evaluation"]["levels"] == "test"
    assert a["evaluation"] == b["evaluation"] and len(a["evaluation"]["returns"]) == 3
    assert a["seed"] == 7 and a["num_envs"] == 2


def test_default_paths_beside_the_checkpoint(runs, tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "ckpt" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    shutil.copy(runs["pendulum"] / "checkpoint.pt", checkpoint)
    code, _, _ = tool(["--checkpoint", checkpoint, "--episodes", 2, "--capture-video"], capsys, monkeypatch)
    assert code == 0
    result = read_json(tmp_path / "ckpt" / "checkpoint.evaluate.json")
    assert [v["path"] for v in result["videos"]] == [os.path.join("videos", "checkpoint.evaluate__episode0.mp4")]
    assert (tmp_path / "ckpt" / "videos" / "checkpoint.evaluate__episode0.mp4").is_file()
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["checkpoint.evaluate.json", "checkpoint.pt", "videos"]
    # a comparison on the same checkpoint has its own default name: the first JSON and its video stay
    code, _, _ = tool(
        ["--checkpoint", checkpoint, "--compare", runs["mujoco_teacher"], "--episodes", 2], capsys, monkeypatch
    )
    assert code == 0
    assert read_json(tmp_path / "ckpt" / "checkpoint.evaluate.json") == result
    compared = read_json(tmp_path / "ckpt" / "checkpoint.compare.json")
    assert [v["path"] for v in compared["videos"]] == [os.path.join("videos", "checkpoint.compare__episode0.mp4")]
    assert sorted(os.listdir(tmp_path / "ckpt" / "videos")) == [
        "checkpoint.compare__episode0.mp4",
        "checkpoint.evaluate__episode0.mp4",
    ]


def test_readme_example_outputs_are_ignored_and_committed_data_is_not():
    """The README's examples write these (evaluate's --out watch/, a seed-3 teacher, a quick try, an imported
    model, a report); git status stays clean of them, while the committed teachers and results stay tracked."""

    def ignored(path):
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT).returncode == 0

    for path in (
        "watch/hopper.json",
        "watch/videos/hopper__episode0.mp4",
        "teachers/Hopper-v4__3.pt",
        "teachers/Hopper-v4__3.json",
        "try/teachers/Hopper-v4__1.pt",
        "zoo/Hopper-v4__1.json",
        "report/report.md",
        "runs/quickstart/checkpoint.compare.json",
        "videos/x.mp4",
    ):
        assert ignored(path), path
    for path in (
        "teachers/Hopper-v4__1.pt",
        "teachers/Hopper-v4__2.json",
        "teachers/Ant-v4__3.pt",
        "results/runs/Hopper-v4__ppd__larger__1/eval.json",
        "results/report/report.md",
    ):
        assert not ignored(path), path


# ---------------------------------------------------------------------------------------------
# Atari: the ale-py pipeline of the videos against the scripts' envpool env
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "game,max_steps,end",
    [("Pong-v5", 27_000, "game over"), ("Breakout-v5", 1000, "game over"), ("MsPacman-v5", 300, "step limit")],
)
def test_ale_pipeline_matches_envpool_frame_for_frame(game, max_steps, end):
    """No random no-ops on either side (noop_max 1; FIRE games then take no no-op at all) and the same random
    actions: the observations agree frame for frame within RESIZE_TOLERANCE, rewards and episode ends exactly.
    Pong and Breakout (FIRE, lives; its game ends inside a frame skip) play to game over, MsPacman (no FIRE: one
    no-op) to the step limit. Breakout's lost lives take envpool's reset step (FIRE, same game) on both sides."""
    import ppo_teacher_atari as script

    config = script.make_env(game, 1, 5, max_steps).config  # the scripts' preprocessing, life-loss resets included
    kwargs = {
        k: config[k]
        for k in (
            "episodic_life",
            "reward_clip",
            "frame_skip",
            "stack_num",
            "img_height",
            "img_width",
            "gray_scale",
            "repeat_action_probability",
            "max_episode_steps",
        )
    }
    reference = envpool.make(game, env_type="gymnasium", num_envs=1, seed=5, noop_max=1, **kwargs)
    player = ev.AtariPlayer(config, seed=5, noop_max=1)
    assert (
        player.stack_num == 4 and player.frame_skip == 4 and (player.fire_action is not None) == (game != "MsPacman-v5")
    )
    expected, _ = reference.reset()
    obs = player.reset()
    rng = np.random.default_rng(0)
    worst, differing, steps, lives_lost = 0, 0, 0, 0
    while True:
        assert obs.shape == expected.shape == (1, 4, 84, 84)
        diff = np.abs(obs.astype(int) - expected.astype(int))
        worst, differing = max(worst, int(diff.max())), differing + int((diff > 0).sum())
        action = rng.integers(reference.action_space.n, size=1)
        expected, reward, term, trunc, info = reference.step(action)
        obs, our_reward, over, _ = player.step(action)
        steps += 1
        lives_lost += bool(term[0]) and not info["terminated"][0]
        assert our_reward == reward[0] and over == bool(info["terminated"][0] or trunc[0]), steps
        assert player.frame().shape == (210, 160, 3)
        if over:
            break
    diff = np.abs(obs.astype(int) - expected.astype(int))  # the final observation too
    worst = max(worst, int(diff.max()))
    assert worst <= RESIZE_TOLERANCE
    assert differing / (steps * 4 * 84 * 84) < 0.01  # rounding ties only: well under 1% of the pixels
    assert (bool(term[0]), bool(trunc[0])) == ((True, False) if end == "game over" else (False, True))
    assert steps - lives_lost == max_steps if end == "step limit" else steps < max_steps
    assert lives_lost == {"Pong-v5": 0, "Breakout-v5": 4, "MsPacman-v5": lives_lost}[game]
    reference.close()
    player.close()


def test_area_resize_weights_average_exactly():
    weights = ev.area_resize_weights(210, 84)
    assert weights.shape == (84, 210) and np.allclose(weights.sum(axis=1), 1.0)
    image = np.full((210, 160), 77, np.uint8)
    player_resize = ev.area_resize_weights(210, 84) @ image.astype(float) @ ev.area_resize_weights(160, 84).T
    assert np.allclose(player_resize, 77.0)


# ---------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------
def test_mujoco_videos_are_the_evaluation_episodes(runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.json"
    code, stdout, _ = tool(
        [
            "--checkpoint",
            runs["pendulum"] / "checkpoint.pt",
            "--episodes",
            2,
            "--capture-video",
            "--video-episodes",
            2,
            "--out",
            out,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0 and stdout.count("video: ") == 2
    result = read_json(out)
    assert [v["episode"] for v in result["videos"]] == [0, 1] and [v["env_index"] for v in result["videos"]] == [0, 1]
    for video in result["videos"]:
        panel = video["panels"][0]
        assert video["frames"] == panel["length"] + 1  # the first observation and one frame per step
        assert (video["width"], video["height"]) == (480, 480)
        assert_real_video(tmp_path / video["path"], video["frames"], 480, 480)
    # deterministic actions, evaluate()'s seeds: the filmed episodes are the evaluated ones, returns bit for bit
    assert sorted(v["panels"][0]["return"] for v in result["videos"]) == sorted(result["evaluation"]["returns"])
    assert result["evaluation"] == read_json(runs["pendulum"] / "eval.json")["evaluation"]


def projected(player, point, aspect=1.0):
    """Image coordinates (0..1 from the left, 0..1 from the bottom) of a world point, through the camera of the
    scene the player rendered last (mjr_render sizes the frustum's width by the image's aspect ratio)."""
    cam = player.env.unwrapped.mujoco_renderer.viewer.scn.camera[0]
    forward, up = np.array(cam.forward), np.array(cam.up)
    v = np.asarray(point) - np.array(cam.pos)
    depth = v @ forward
    assert depth > 0  # in front of the camera
    half_height = (cam.frustum_top - cam.frustum_bottom) / 2
    x = (v @ np.cross(forward, up) / depth * cam.frustum_near - cam.frustum_center) / (2 * half_height * aspect)
    y = (v @ up / depth * cam.frustum_near - cam.frustum_bottom) / (2 * half_height)
    return x + 0.5, y


@pytest.mark.parametrize("env_id", ["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Humanoid-v4", "Swimmer-v4"])
def test_mujoco_camera_follows_the_agent(env_id, monkeypatch):
    """The shipped teachers play a whole episode (metres to tens of metres); every 50 steps the agent's centre
    of mass projects into the middle of the rendered frame. The policy sees the observation it trained on
    (Humanoid: envpool's, with the contact forces zeroed)."""
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    policy = ev.Policy(os.path.join(ROOT, "teachers", f"{env_id}__1.pt"), torch.device("cpu"))
    player = ev.MujocoPlayer(policy, 10_001, "test")
    try:
        obs, over, steps = player.reset(), False, 0
        data = player.env.unwrapped.data
        start = data.subtree_com[1].copy()  # body 1: the root (torso) of every task
        while not over:
            if steps % 50 == 0:
                assert player.frame().shape == (480, 480, 3)
                x, y = projected(player, data.subtree_com[1])
                assert 0.1 < x < 0.9 and 0.1 < y < 0.9, (steps, data.subtree_com[1], x, y)
            assert not obs[0, 292:].any() or env_id != "Humanoid-v4"
            obs, _, over, _ = player.step(policy.act(obs, deterministic=True))
            steps += 1
        travelled = np.linalg.norm(data.subtree_com[1][:2] - start[:2])
    finally:
        player.close()
    assert travelled > 1  # 1 m (Humanoid, which falls) to 280 m (HalfCheetah): a fixed camera loses most


def test_atari_video_full_resolution_colour(runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "a.json"
    code, _, _ = tool(
        [
            "--checkpoint",
            runs["atari"] / "checkpoint.pt",
            "--episodes",
            1,
            "--capture-video",
            "--video-dir",
            tmp_path / "vids",
            "--out",
            out,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    (video,) = read_json(out)["videos"]
    assert video["path"] == os.path.join("vids", "a__episode0.mp4") and video["fps"] == 15
    assert video["panels"][0]["length"] == 50  # the run's --max-episode-steps 50, from the checkpoint
    assert_real_video(tmp_path / video["path"], 51, 160, 210)


def test_procgen_video(runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "p.json"
    code, stdout, _ = tool(
        ["--checkpoint", runs["procgen_teacher"], "--episodes", 1, "--capture-video", "--out", out], capsys, monkeypatch
    )
    assert code == 0 and ": 1 episode, stochastic actions, test levels, seed 10001, 1 env: mean return" in stdout
    (video,) = read_json(out)["videos"]
    assert video["frames"] == video["panels"][0]["length"]  # the frame of the last step shows the next level
    assert_real_video(tmp_path / video["path"], video["frames"], 512, 512)


def test_compare_side_by_side(runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "c.json"
    code, _, _ = tool(
        [
            "--checkpoint",
            runs["mujoco_teacher"],
            "--compare",
            runs["sd"] / "checkpoint.pt",
            "--episodes",
            1,
            "--out",
            out,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    result = read_json(out)
    (video,) = result["videos"]
    teacher, student = video["panels"]
    assert (teacher["method"], teacher["size"]) == ("ppo", "teacher")
    assert (student["method"], student["size"]) == ("student_distill", "smaller")
    assert video["frames"] == max(teacher["length"], student["length"]) + 1
    assert video["path"] == os.path.join("videos", "c__episode0.mp4")
    frames = assert_real_video(tmp_path / video["path"], video["frames"], 960, 480 + ev.LABEL_HEIGHT)
    # the teacher's filmed episode is its evaluated one; both start from the same seeded state
    assert teacher["return"] == result["evaluation"]["returns"][0]
    first = frames[0].astype(int)
    body = first[ev.LABEL_HEIGHT :]
    assert np.abs(body[:, :480] - body[:, 480:]).mean() < 3  # same initial state, same robot pose
    bar = first[: ev.LABEL_HEIGHT]
    assert (bar[:, :480] > 128).any() and (bar[:, 480:] > 128).any()  # white label text in each panel
    assert np.abs(bar[:, :480] - bar[:, 480:]).mean() > 1  # the labels differ


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_bad_input_one_line_exit_2_nothing_written(runs, tmp_path, capsys, monkeypatch):
    good = runs["mujoco"] / "checkpoint.pt"
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    state = torch.load(good, weights_only=True)
    unknown_suite, unknown_script = tmp_path / "suite.pt", tmp_path / "script.pt"
    torch.save({**state, "suite": "dmcontrol"}, unknown_suite)
    torch.save({**state, "script": "my_fork.py"}, unknown_script)
    cases = [
        (["--checkpoint", tmp_path / "missing.pt"], "not found"),
        (["--checkpoint", text], "cannot read checkpoint"),
        (["--checkpoint", foreign], "not a checkpoint of this project"),
        (["--checkpoint", unknown_suite], "unknown suite 'dmcontrol'"),
        (["--checkpoint", unknown_script], "'my_fork.py'"),
        (["--checkpoint", good, "--episodes", 0], "--episodes must be positive"),
        (["--checkpoint", good, "--episodes", -5], "--episodes must be positive"),
        (["--checkpoint", good, "--num-envs", 0], "--num-envs must be positive"),
        (["--checkpoint", good, "--capture-video", "--video-episodes", 0], "--video-episodes must be positive"),
        (["--checkpoint", good, "--episodes", 2, "--capture-video", "--video-episodes", 3], "more than the 2"),
        (["--checkpoint", good, "--out", tmp_path], "is a folder"),
        (["--checkpoint", good, "--levels", "train"], "Procgen only"),
        (["--checkpoint", good, "--compare", runs["atari"] / "checkpoint.pt"], "same env"),
        (["--checkpoint", good, "--compare", text], "cannot read checkpoint"),
        (["--checkpoint", good, "--random-policy"], "needs discrete actions (Atari, Procgen)"),
        (
            ["--checkpoint", runs["atari"] / "checkpoint.pt", "--random-policy", "--actions", "deterministic"],
            "drop --actions deterministic",
        ),
    ]
    before = sorted(os.listdir(tmp_path))
    for argv, message in cases:
        out = [] if "--out" in argv else ["--out", tmp_path / "out.json"]
        code, stdout, stderr = tool([*argv, *out], capsys, monkeypatch)
        assert stdout == "" and one_error_line(stderr, code, message), argv
    assert sorted(os.listdir(tmp_path)) == before  # nothing written


def test_random_policy_is_uniform_on_the_evaluations_own_protocol(teacher_runs, tmp_path, capsys, monkeypatch):
    """--random-policy turns a decisive Procgen teacher (always FAVOURED) into uniform sampled actions, and the
    tool's evaluation is that policy's on the checkpoint's own test levels and seed, written to .random.json
    beside the checkpoint."""
    teacher = decisive_teacher(teacher_runs, "procgen", str(tmp_path / "t" / "starpilot__1.pt"))
    policy = ev.Policy(teacher, torch.device("cpu"))
    obs = np.random.default_rng(0).integers(0, 256, (3000, 64, 64, 3), dtype=np.uint8)
    assert (policy.act(obs[:100], deterministic=False) == FAVOURED).all()
    policy.make_uniform()
    counts = np.bincount(policy.act(obs, deterministic=False), minlength=15)
    assert len(counts) == 15 and 120 < counts.min() and counts.max() < 280, counts  # 200 each, sd 14
    code, stdout, _ = tool(
        ["--checkpoint", teacher, "--episodes", 3, "--num-envs", 3, "--random-policy"], capsys, monkeypatch
    )
    assert code == 0 and "uniform random policy" in stdout
    result = read_json(tmp_path / "t" / "starpilot__1.random.json")
    assert result["policy"] == "uniform random" and result["seed"] == 1 + 10_000 and result["num_envs"] == 3
    assert result["evaluation"]["deterministic"] is False and result["evaluation"]["levels"] == "test"
    levels = result["evaluation"].pop("envs")  # the level set it played: the checkpoint's unseen test levels
    assert (levels["start_level"], levels["num_levels"], levels["distribution_mode"]) == (1_000_000, 1_000_000, "easy")
    assert result["evaluation"] == policy.evaluate(3, 3, 1 + 10_000, deterministic=False, test_levels=True)
    assert sorted(os.listdir(tmp_path / "t")) == ["starpilot__1.pt", "starpilot__1.random.json"]


def test_a_corrupted_teacher_is_measured_as_its_students_see_it(teacher_runs, tmp_path, capsys, monkeypatch):
    """--corruption-sigma (issue #38, part 3): the tool's evaluation of a teacher with sigma = 0.05 is, return for
    return, the evaluation a PPD run of the same seed with --teacher-corruption-sigma 0.05 makes of its corrupted
    teacher (the same noise, the same protocol); without the noise the returns differ."""
    work, _ = teacher_runs["mujoco"]
    teacher = work / "teachers" / "Hopper-v4__1.pt"
    run_main(
        "ppd_mujoco.py",
        [
            *TINY["mujoco"],
            "--total-timesteps",
            256,
            "--teacher-path",
            teacher,
            "--teacher-corruption-sigma",
            0.05,
            "--run-name",
            "sigma",
        ],
        tmp_path,
    )
    students_view = read_json(tmp_path / "runs" / "sigma" / "teacher_evaluation.json")["evaluation"]["returns"]
    out = tmp_path / "corrupted.json"
    code, stdout, err = tool(
        ["--checkpoint", teacher, "--corruption-sigma", 0.05, "--episodes", 2, "--num-envs", 2, "--out", out],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    result = read_json(out)
    assert result["corruption"] == {"sigma": 0.05, "seed": 1} and "corrupted with sigma 0.05 (seed 1)" in stdout
    assert result["evaluation"]["returns"] == students_view
    code, _, _ = tool(
        ["--checkpoint", teacher, "--episodes", 2, "--num-envs", 2, "--out", tmp_path / "plain.json"],
        capsys,
        monkeypatch,
    )
    assert code == 0 and read_json(tmp_path / "plain.json")["evaluation"]["returns"] != students_view
    code, _, err = tool(["--checkpoint", teacher, "--corruption-sigma", -1], capsys, monkeypatch)
    one_error_line(err, code, "--corruption-sigma must not be negative, got -1")


def test_no_gl_backend_one_line_hint(runs, tmp_path):
    out = tmp_path / "g.json"
    proc = run_script(
        "tools/evaluate.py",
        ["--checkpoint", runs["mujoco"] / "checkpoint.pt", "--episodes", 1, "--capture-video", "--out", out],
        tmp_path,
        check=False,
        env={**os.environ, "MUJOCO_GL": "glfw", "DISPLAY": ""},
    )  # read when mujoco is imported
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: cannot render Mujoco with MUJOCO_GL=glfw") and proc.stderr.count("\n") == 1
    assert "MUJOCO_GL=egl" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_json_is_the_documented_shape(runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "j.json"
    code, _, _ = tool(
        [
            "--checkpoint",
            runs["mujoco_teacher"],
            "--episodes",
            3,
            "--num-envs",
            3,
            "--actions",
            "stochastic",
            "--seed",
            3,
            "--out",
            out,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) == {
        "checkpoint",
        "sha256",
        "script",
        "method",
        "suite",
        "env_id",
        "student_size",
        "policy_params",
        "global_step",
        "seed",
        "num_envs",
        "policy",
        "corruption",
        "evaluation",
        "videos",
        "ran_on",
    }
    assert result["policy"] == "checkpoint" and result["corruption"] is None
    assert result["ran_on"]["script"] == "ppo_teacher_mujoco.py" and result["ran_on"]["tool_args"]["seed"] == 3
    assert result["ran_on"]["git_commit"] and result["ran_on"]["device"] == "cpu"
    evaluation = result["evaluation"]
    assert set(evaluation) == {
        "episodes",
        "deterministic",
        "levels",
        "returns",
        "mean",
        "std",
        "human_normalized",
        "envs",
    }
    assert evaluation["envs"]["backend"] == "gymnasium" and evaluation["envs"]["env_id"] == result["env_id"]
    assert evaluation["deterministic"] is False and evaluation["episodes"] == 3 and len(evaluation["returns"]) == 3
    assert evaluation["mean"] == pytest.approx(np.mean(evaluation["returns"]))


def test_trunk_health_finds_a_dead_trunk(teacher_runs, capsys, monkeypatch, tmp_path):
    """tools/trunk_health.py on conftest's tiny Pong teacher (one shared IMPALA trunk): every layer has live
    channels and the logits vary between frames; the same teacher with its fully connected layer's biases at
    -1000 (every unit dead) reads 0 live units there and logits that never vary; a Mujoco checkpoint is refused
    in one line."""
    import trunk_health

    teacher = teacher_runs["atari"][0] / "teachers" / "Pong-v5__1.pt"
    out = tmp_path / "health.json"
    code, stdout, err = run_cli(
        trunk_health, ["--checkpoint", teacher, "--steps", 5, "--num-envs", 2, "--out", out], capsys, monkeypatch
    )
    assert code == 0, err
    result = read_json(out)
    assert result["frames"] == 10 and list(result["trunks"]) == ["shared"] and result["device"] == "cpu"
    assert f"{teacher} (Pong-v5, 10 frames, on cpu)" in stdout
    layers = result["trunks"]["shared"]  # IMPALA: the ReLU after the flattened stages, then the 16 units
    assert [layer["channels"] for layer in layers][-1] == 16 and all(layer["live"] > 0 for layer in layers)
    assert result["logit_std"] > 0 and "ignores the screen" not in stdout

    state = torch.load(teacher, weights_only=True)
    fc_bias = [k for k in state["actor"] if k.startswith("actor.0.") and k.endswith(".bias")][-1]
    state["actor"][fc_bias] = torch.full_like(state["actor"][fc_bias], -1000.0)
    dead = tmp_path / "dead.pt"
    torch.save(state, dead)
    code, stdout, err = run_cli(
        trunk_health, ["--checkpoint", dead, "--steps", 5, "--num-envs", 2, "--out", out], capsys, monkeypatch
    )
    assert code == 0, err
    result = read_json(out)
    assert result["trunks"]["shared"][-1]["live"] == 0 and result["logit_std"] == 0
    assert "the policy ignores the screen" in stdout

    code, _, err = run_cli(
        trunk_health, ["--checkpoint", teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"], capsys, monkeypatch
    )
    assert code == 2 and one_error_line(err, code, "is a mujoco checkpoint; this tool reads pixel policies")


def shipped_pixel_teacher(name: str):
    """(record, Policy) of teachers/{name}.pt (issue #20): the file its .json names, the one-trunk Nature-CNN
    {32, 64, 64}/512 its recorded evaluation came from, with the recorded parameter count."""
    path = os.path.join(ROOT, "teachers", f"{name}.pt")
    record = read_json(path[:-3] + ".json")
    assert sha256(path) == record["checkpoint_sha256"]
    policy = ev.Policy(path, torch.device("cpu"))
    assert policy.state["network"] == {"arch": "nature", "channels": [32, 64, 64], "fc_size": 512, "shared_trunk": True}
    assert policy.agent.policy_params() == record["policy_params"]
    return record, policy


def test_the_shipped_pong_teacher_wins_a_full_game():
    """teachers/Pong-v5__1.pt: its 50-game evaluation (+20.70) is recorded, and it still wins a deterministic
    full game by a wide margin (unloaded weights play at -21; the policy is robust enough that a changed pixel
    scale still wins, so that is not guarded here)."""
    record, policy = shipped_pixel_teacher("Pong-v5__1")
    assert record["evaluation"]["mean"] >= 18
    result = policy.evaluate(1, 1, seed=12_345, deterministic=True, test_levels=False)
    assert result["episodes"] == 1 and result["mean"] >= 15, result


COINRUN_TEACHERS = committed_teachers("coinrun__")  # every one: tests/test_shipped_teachers.py checks the others


@pytest.mark.parametrize("name", COINRUN_TEACHERS)
def test_the_coinrun_teacher_beats_a_random_policy_on_test_levels(name):
    """teachers/coinrun__{seed}.pt: recorded above the committed uniform-random baseline of the same checkpoint
    (200 test-level episodes: 3.00), and 20 test-level episodes played here score well above the uniform random
    policy's on the same levels and seed (unloaded weights: 3.5 against 3.5)."""
    record, policy = shipped_pixel_teacher(name)
    random_test = read_json(os.path.join(ROOT, "results", "pixels", f"{name}_random_policy_test.json"))
    assert random_test["sha256"] == record["checkpoint_sha256"] and random_test["policy"] == "uniform random"
    assert record["evaluation"]["levels"] == "test" and record["evaluation"]["episodes"] == 200
    assert record["evaluation"]["mean"] > 2 * random_test["evaluation"]["mean"]
    teacher = policy.evaluate(20, 10, seed=11_001, deterministic=False, test_levels=True)
    policy.make_uniform()
    random = policy.evaluate(20, 10, seed=11_001, deterministic=False, test_levels=True)
    assert teacher["mean"] > random["mean"] + 2, (teacher["mean"], random["mean"])
