"""benchmarks/throughput.py runs on a tiny budget and prints its tables (a benchmark, not a speed test)."""

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
    code, out, err = run_cli(throughput, ["--env-id", "Hopper", "--student", "smaller", "--updates", "2",
                                          "--num-envs", "8", "--sd-td-steps", "160", "--raw-steps", "10",
                                          "--teacher-path", teacher], capsys, monkeypatch)
    assert code == 0, err[-2000:]
    assert "## Throughput: Hopper-v4, smaller student, 8 envs" in out and "Machine: " in out
    for row in ("PPO (student network, PPD settings)", "PPD", "student-distill", "teacher-distill", "env step (raw)",
                "acting forward", "teacher forward", "update (4 epochs)", "gymnasium sync", "gymnasium async",
                "envpool", "envpool, 1 thread", "PPD, --env-backend gymnasium", "PPD / PPO", "PPD / raw env",
                "SD / PPD", "TD / PPD", "PPD envpool / PPD gymnasium"):
        match = re.search(rf"^\| {re.escape(row)} \| ([\d,.]+) \|", out, re.M)
        assert match and float(match.group(1).replace(",", "")) > 0, row
    shares = [int(m) for m in re.findall(r"\| (\d+)% \|", out)]
    assert len(shares) == 4 and 97 <= sum(shares) <= 103


def test_cnn_update_benchmark_times_both_trunk_layouts(capsys, monkeypatch):
    """benchmarks/cnn_update.py on a tiny minibatch: one row per network and trunk layout, each with four
    positive timings and the three ratios to the bare forward + backward that they imply."""
    import cnn_update

    monkeypatch.setattr(sys, "argv", ["cnn_update.py", "--suite", "procgen", "--networks", "smaller",
                                      "--minibatch-size", "8", "--steps", "1", "--repeats", "1"])
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
