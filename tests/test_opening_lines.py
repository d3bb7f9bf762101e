"""No silent minutes (issue #42 item 4): evaluations longer than a few seconds print their progress with an ETA, and
a resumed student reads its teacher's evaluation back instead of playing the teacher's games again."""

import json
import re

from conftest import TINY, load_script, read_json, run_main

PROGRESS = re.compile(r"evaluating: (\d+)/2 episodes in \d+\.\d min, (ETA \d+\.\d min|ETA after its first episode)$")


def test_a_long_evaluation_prints_its_progress_and_eta(tmp_path, monkeypatch):
    """With the first line due at once, every evaluation step prints one: episodes done of the quota, and an ETA
    once an episode has ended."""
    monkeypatch.setattr(load_script("ppo_teacher_mujoco").EvalProgress, "FIRST", 0.0)
    monkeypatch.setattr(load_script("ppo_teacher_mujoco").EvalProgress, "EVERY", 0.0)
    proc = run_main(
        "ppo_teacher_mujoco.py",
        [
            *TINY["mujoco"],
            "--total-timesteps",
            256,
            "--hidden-sizes",
            8,
            "--run-name",
            "progress",
            "--teachers-dir",
            "t",
        ],
        cwd=tmp_path,
    )
    lines = [m for m in map(PROGRESS.match, proc.stdout.splitlines()) if m]
    assert len(lines) > 2 and lines[0].group(0) == "evaluating: 0/2 episodes in 0.0 min, ETA after its first episode"
    done = [int(m.group(1)) for m in lines]
    assert done == sorted(done) and done[-1] < 2
    assert all(m.group(2).startswith("ETA after") == (n == 0) for m, n in zip(lines, done))


def test_a_resumed_student_reads_its_teachers_evaluation_back(teacher_runs, tmp_path):
    """A resumed PPD run takes the teacher's evaluation from its run folder (a planted value comes back in
    eval.json); --reevaluate-teacher plays the teacher again and writes the file anew."""
    teacher = teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"
    tiny = [*TINY["mujoco"], "--teacher-path", teacher, "--student", "smaller"]
    run_main("ppd_mujoco.py", [*tiny, "--total-timesteps", 256, "--run-name", "r"], cwd=tmp_path)
    saved_path = tmp_path / "runs" / "r" / "teacher_evaluation.json"
    first = read_json(tmp_path / "runs" / "r" / "eval.json")["teacher"]["evaluation"]
    saved = read_json(saved_path)
    assert saved["evaluation"]["returns"] == first["returns"] and saved["key"]["eval_episodes"] == 2
    saved["evaluation"]["mean"] = 12345.0
    saved_path.write_text(json.dumps(saved))
    checkpoint = tmp_path / "runs" / "r" / "checkpoint.pt"
    proc = run_main("ppd_mujoco.py", ["--resume", checkpoint, "--total-timesteps", 512], cwd=tmp_path)
    assert f"teacher evaluation (from {saved_path}; --reevaluate-teacher plays it again)" in proc.stdout
    assert read_json(tmp_path / "runs" / "r" / "eval.json")["teacher"]["evaluation"]["mean"] == 12345.0
    run_main("ppd_mujoco.py", ["--resume", checkpoint, "--total-timesteps", 768, "--reevaluate-teacher"], cwd=tmp_path)
    again = read_json(tmp_path / "runs" / "r" / "eval.json")["teacher"]["evaluation"]
    assert again["mean"] == first["mean"] and read_json(saved_path)["evaluation"]["mean"] == first["mean"]
