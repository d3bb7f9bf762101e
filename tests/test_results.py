"""The committed results: a fresh report of results/runs/ equals the committed results/report/, and every
committed run is a complete run of the grid in results/run_grid.sh."""

import csv
import filecmp
import json
import os
import subprocess
import sys

from conftest import ROOT

RUNS = os.path.join(ROOT, "results", "runs")
REPORT = os.path.join(ROOT, "results", "report")


def test_the_committed_report_is_a_fresh_report_of_the_committed_runs(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join("tools", "report.py"), "--runs-dir", "results/runs",
                           "--out-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    fresh = sorted(n for n in os.listdir(tmp_path) if n.endswith((".csv", ".md")))
    committed = sorted(n for n in os.listdir(REPORT) if n.endswith((".csv", ".md")))
    assert fresh == committed
    for name in fresh:
        assert filecmp.cmp(tmp_path / name, os.path.join(REPORT, name), shallow=False), name
    figures = sorted(n for n in os.listdir(tmp_path) if n.endswith(".png"))
    assert figures and figures == sorted(n for n in os.listdir(REPORT) if n.endswith(".png"))


def test_every_committed_run_is_a_finished_run_of_the_grid():
    """eval.json and curves.csv; distillation runs at the grid's budget, each naming its teacher's file hash."""
    names = sorted(os.listdir(RUNS))
    assert names
    teachers = {json.load(open(os.path.join(ROOT, "teachers", n)))["checkpoint_sha256"]
                for n in os.listdir(os.path.join(ROOT, "teachers")) if n.endswith(".json")}
    for name in names:
        assert sorted(os.listdir(os.path.join(RUNS, name))) == ["curves.csv", "eval.json"], name
        info = json.load(open(os.path.join(RUNS, name, "eval.json")))
        assert info["env_id"] in ("Hopper-v4", "HalfCheetah-v4") and info["evaluation"]["episodes"] == 50, name
        if info["method"] == "ppo":  # a seed-2 teacher, trained by the grid with the shipped teachers' budget
            assert info["total_timesteps"] >= 1_990_000 and info["checkpoint_sha256"] in teachers, name
            continue
        assert info["total_timesteps"] == 2_000_000 // (18 * info_rollout(info)) * (18 * info_rollout(info)), name
        assert info["teacher"]["sha256"] in teachers, name  # its teacher is committed in teachers/
        with open(os.path.join(RUNS, name, "curves.csv")) as f:
            steps = [int(row["step"]) for row in csv.DictReader(f) if row["tag"] == "eval/episodic_return"]
        # --eval-every 100000: the first update past each multiple of 100k (1,999,872 steps: 19 of them)
        assert len(steps) == info["total_timesteps"] // 100_000 and steps == sorted(steps), name


def info_rollout(info: dict) -> int:
    """Steps per env per rollout: 64 for PPD, 5 for the baselines (A.3)."""
    return 64 if info["method"] == "ppd" else 5
