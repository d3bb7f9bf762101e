"""benchmarks/throughput.py runs on a tiny budget and prints its tables (a benchmark, not a speed test)."""

import os
import re
import subprocess
import sys

from conftest import ROOT


def test_throughput_benchmark_prints_its_tables(teacher_runs):
    teacher = teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "throughput.py"), "--env-id", "Hopper",
                           "--student", "smaller", "--updates", "2", "--num-envs", "8", "--sd-td-steps", "320",
                           "--raw-steps", "10", "--teacher-path", teacher], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "## Throughput: Hopper-v4, smaller student, 8 envs" in out and "Machine: " in out
    for row in ("PPO (student network, PPD settings)", "PPD", "student-distill", "teacher-distill", "env step (raw)",
                "acting forward", "teacher forward", "update (4 epochs)", "gymnasium sync", "gymnasium async",
                "envpool", "envpool, 1 thread", "PPD, --env-backend gymnasium", "PPD / PPO", "PPD / raw env",
                "SD / PPD", "TD / PPD", "PPD envpool / PPD gymnasium"):
        match = re.search(rf"^\| {re.escape(row)} \| ([\d,.]+) \|", out, re.M)
        assert match and float(match.group(1).replace(",", "")) > 0, row
    shares = [int(m) for m in re.findall(r"\| (\d+)% \|", out)]
    assert len(shares) == 4 and 97 <= sum(shares) <= 103
