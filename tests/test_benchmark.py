"""The benchmarks on tiny budgets (benchmarks, not speed tests): throughput.py and cnn_update.py print their tables,
and gpu_check.sh runs start to end on a CPU."""

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

from conftest import ROOT, run_cli, run_main

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import throughput  # noqa: E402


def test_throughput_benchmark_prints_its_tables(teacher_runs, capsys, monkeypatch, tmp_path):
    """In-process: the five training runs the benchmark starts as `python SCRIPT ...` run as run_main (their
    tensorboard wall times, which the SPS come from, are the same), its other commands as usual."""

    def run_here(cmd, cwd=None, **kwargs):
        if cmd[0] != sys.executable:
            return subprocess.run(cmd, cwd=cwd, **kwargs)  # the module's own; only throughput's is replaced
        return run_main(os.path.relpath(cmd[1], ROOT), cmd[2:], cwd, check=False)

    monkeypatch.setattr(throughput, "subprocess", SimpleNamespace(run=run_here))
    monkeypatch.setattr(throughput, "SCRIPT", "benchmarks/throughput.py", raising=False)
    monkeypatch.chdir(tmp_path)
    teacher = teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"
    code, out, err = run_cli(
        throughput,
        [
            "--env-id",
            "Hopper",
            "--student",
            "smaller",
            "--updates",
            "2",
            "--num-envs",
            "8",
            "--sd-td-steps",
            "160",
            "--raw-steps",
            "10",
            "--teacher-path",
            teacher,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err[-2000:]
    assert "## Throughput: Hopper-v4, smaller student, 8 envs" in out and "Machine: " in out
    for row in (
        "PPO (student network, PPD settings)",
        "PPD",
        "student-distill",
        "teacher-distill",
        "env step (raw)",
        "acting forward",
        "teacher forward",
        "update (4 epochs)",
        "gymnasium sync",
        "gymnasium async",
        "envpool",
        "envpool, 1 thread",
        "PPD, --env-backend gymnasium",
        "PPD / PPO",
        "PPD / raw env",
        "SD / PPD",
        "TD / PPD",
        "PPD envpool / PPD gymnasium",
    ):
        match = re.search(rf"^\| {re.escape(row)} \| ([\d,.]+) \|", out, re.M)
        assert match and float(match.group(1).replace(",", "")) > 0, row
    shares = [int(m) for m in re.findall(r"\| (\d+)% \|", out)]
    assert len(shares) == 4 and 97 <= sum(shares) <= 103


def test_cnn_update_benchmark_times_both_trunk_layouts(capsys, monkeypatch):
    """benchmarks/cnn_update.py on a tiny minibatch: one row per network and trunk layout, each with four
    positive timings and the three ratios to the bare forward + backward that they imply."""
    import cnn_update

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "cnn_update.py",
            "--suite",
            "procgen",
            "--networks",
            "smaller",
            "--minibatch-size",
            "8",
            "--steps",
            "1",
            "--repeats",
            "1",
        ],
    )
    cnn_update.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| smaller")]
    assert [row.split(",")[1].split("|")[0].strip() for row in rows] == ["shared trunk", "separate trunk"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        bare = float(cells[0])
        for cell in cells[1:]:
            ms, ratio = re.fullmatch(r"(\d+) \((\d+\.\d\d)x\)", cell).groups()
            ms, ratio = float(ms), float(ratio)  # both printed rounded: ms to whole numbers, the ratio to 0.01
            assert bare > 0 and (ms - 0.5) / (bare + 0.5) - 0.005 <= ratio <= (ms + 0.5) / max(bare - 0.5, 1e-9) + 0.005


def test_the_gpu_check_runs_start_to_end_on_a_cpu(tmp_path):
    """benchmarks/gpu_check.sh without a GPU (issue #40): every step runs on the CPU with its short budgets and
    says so; no sync is counted; on one device a "device" run and its --no-cuda run are the same run, so the two
    scripts that repeat it give bit-equal losses; the interrupted run resumes its own generator; and the check's
    file holds every part of its report."""
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--out", out],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    wheel = results["wheel"]
    assert wheel["cuda_available"] is False and "no figure here is a GPU figure" in wheel["verdict"]
    assert set(results["tiny_runs"]) == {
        "ppo_teacher_mujoco",
        "ppo_teacher_atari",
        "ppo_teacher_procgen",
        "ppd_mujoco",
        "ppd_atari",
        "ppd_procgen",
        "student_distill",
        "teacher_distill",
    }
    for script, row in results["tiny_runs"].items():
        assert row["syncs_total"] == 0 and "losses/value_loss" in row["device"]["losses"], script
        assert ("losses/distill_kl" in row["device"]["losses"]) == (not script.startswith("ppo_teacher")), script
        repeated = script in ("ppo_teacher_mujoco", "ppd_atari")  # the --no-cuda run, on one device: the same run
        assert ("cpu" in row) == repeated and row["max_relative_loss_difference"] == (0.0 if repeated else None)
        assert not repeated or row["device"]["losses"] == row["cpu"]["losses"], script
    resume = results["resume"]
    assert resume["continues"] and resume["exit_code_on_sigterm"] == 143 and resume["checkpoint_device"] == "cpu"
    assert resume["generator"] == "torch" and resume["interrupted_at_step"] >= 2 * 4 * 32
    evaluation = results["evaluate_on_cpu"]
    assert evaluation["ok"] and evaluation["episodes"] == 2 and evaluation["ran_on"] == "cpu"
    rows = {(r["env_id"], r["bf16"]): r for r in results["throughput"]}
    assert set(rows) == {("Pong-v5", False), ("Pong-v5", True), ("Hopper-v4", False), ("Hopper-v4", True)}
    assert all(r["device"] == "cpu" and r["steps_per_second"] > 0 for r in rows.values())
    for part in (
        "## GPU check",
        "| ppd_atari | 0 (0.0) | - | within 0.0e+00 |",
        "| ppd_procgen | 0 (0.0) | - | - |",
        "Interrupt and resume: exit 143",
        "evaluated on the CPU: 2 episodes",
        "| Pong-v5 | larger | cpu | True | 2 |",
    ):
        assert part in results["report"] and part in proc.stdout, part


def test_ab_alternates_two_commits_and_reports_their_ratio(tmp_path):
    """benchmarks/ab.py on a tiny teacher run (two updates, so the SPS after the first exists), HEAD against this tree:
    one A and one B run per pair, in that order, each with a positive SPS; the ratio line; the worktree removed."""
    before = subprocess.run(["git", "-C", ROOT, "worktree", "list"], capture_output=True, text=True).stdout
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "ab.py"),
            "--base",
            "HEAD",
            "--pairs",
            "2",
            "--",
            "ppo_teacher_mujoco.py",
            "--env-id",
            "Hopper",
            "--num-envs",
            "2",
            "--num-steps",
            "64",
            "--minibatch-size",
            "64",
            "--hidden-sizes",
            "16",
            "16",
            "--total-timesteps",
            "256",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = re.findall(r"^pair (\d) ([AB]): ([\d,.]+) steps/s$", proc.stdout, re.M)
    assert [(p, side) for p, side, _ in runs] == [("1", "A"), ("1", "B"), ("2", "A"), ("2", "B")]
    assert all(float(sps.replace(",", "")) > 0 for _, _, sps in runs)
    ratio = re.search(r"^B / A: (\d+\.\d+) \(95% interval (-?\d+\.\d+) to (\d+\.\d+)\)$", proc.stdout, re.M)
    assert ratio and float(ratio.group(2)) <= float(ratio.group(1)) <= float(ratio.group(3))
    assert subprocess.run(["git", "-C", ROOT, "worktree", "list"], capture_output=True, text=True).stdout == before
