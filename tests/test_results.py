"""The committed results: a fresh report of results/runs/ equals the committed results/report/, every
committed run is a complete run of the grid in results/run_grid.sh, and results/ppd_pace.sh's variants and
summary are what docs/results.md says they are."""

import csv
import filecmp
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, read_scalars, run_main

RUNS = os.path.join(ROOT, "results", "runs")
REPORT = os.path.join(ROOT, "results", "report")


def test_the_committed_report_is_a_fresh_report_of_the_committed_runs(tmp_path):
    run_main("tools/report.py", ["--runs-dir", "results/runs", "--out-dir", tmp_path], ROOT)
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
    records = [
        json.load(open(os.path.join(ROOT, "teachers", n)))
        for n in os.listdir(os.path.join(ROOT, "teachers"))
        if n.endswith(".json")
    ]
    teachers = {r["checkpoint_sha256"]: r["total_timesteps"] for r in records}
    for name in names:
        assert sorted(os.listdir(os.path.join(RUNS, name))) == ["curves.csv", "eval.json"], name
        info = json.load(open(os.path.join(RUNS, name, "eval.json")))
        if info.get("games"):  # issue #39: a multi-teacher student of results/multi_teacher.sh
            check_multi_teacher_run(name, info, teachers)
            continue
        budget, episodes = GRID_BUDGETS[info["env_id"]]
        assert info["evaluation"]["episodes"] == episodes, name
        if info["env_id"] in ("Ant-v4", "Humanoid-v4"):  # issue #22: only from the 10M-step teachers
            assert info["method"] != "ppo" and teachers.get(info["teacher"]["sha256"], 0) >= 9_900_000, name
        if info["method"] == "ppo":  # a seed-2 teacher, trained by the grid with the shipped teachers' budget
            assert info["total_timesteps"] >= 1_990_000 and info["checkpoint_sha256"] in teachers, name
            continue
        assert info["total_timesteps"] == budget // (18 * info_rollout(info)) * (18 * info_rollout(info)), name
        assert info["teacher"]["sha256"] in teachers, name  # its teacher is committed in teachers/
        with open(os.path.join(RUNS, name, "curves.csv")) as f:
            steps = [int(row["step"]) for row in csv.DictReader(f) if row["tag"] == "eval/episodic_return"]
        # --eval-every 100000: the first update past each multiple of 100k (1,999,872 steps: 19 of them)
        assert len(steps) == info["total_timesteps"] // 100_000 and steps == sorted(steps), name


# env_id -> (steps, final evaluation episodes) of results/run_grid.sh's distillation runs: Mujoco 2M steps (A.3),
# the Pong phase 1M (issue #20 part 3), coinrun 2M with Procgen's 200 test-level episodes (issue #20 part 4)
GRID_BUDGETS = {
    **{env: (2_000_000, 50) for env in ("Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Humanoid-v4")},
    "Pong-v5": (1_000_000, 50),
    **{game: (2_000_000, 200) for game in ("coinrun", "jumper", "miner", "ninja")},  # issue #38: all four games
}


def check_multi_teacher_run(name: str, info: dict, teachers: dict) -> None:
    """results/multi_teacher.sh's runs: 8M steps over the four games (72 envs), each game evaluated on 200 test and
    200 training-level episodes against its committed teacher of the run's seed, --eval-every 400000 per game."""
    rollout = 72 * info_rollout(info)
    assert info["env_ids"] == ["coinrun", "jumper", "miner", "ninja"], name
    assert info["total_timesteps"] == 8_000_000 // rollout * rollout and info["student_size"] == "same", name
    for game, record in info["games"].items():
        assert record["evaluation"]["episodes"] == record["evaluation_train_levels"]["episodes"] == 200, name
        assert teachers.get(record["teacher"]["sha256"]) is not None, (name, game)
        with open(os.path.join(RUNS, name, "curves.csv")) as f:
            steps = [int(row["step"]) for row in csv.DictReader(f) if row["tag"] == f"eval/episodic_return/{game}"]
        assert len(steps) == info["total_timesteps"] // 400_000 and steps == sorted(steps), (name, game)


def info_rollout(info: dict) -> int:
    """Steps per env per rollout: 64 for PPD (and multi-task PPO), 5 for the baselines (A.3)."""
    return 64 if info["method"] in ("ppd", "ppo") else 5


def test_ppd_pace_variants_are_one_line_changes_of_eq2(tmp_path):
    """results/ppd_pace.sh's patched copies of ppd_mujoco.py: the one line each names, and the detached ratio
    keeps Eq. 2's value while its gradient no longer reaches r."""
    import importlib.util

    import torch

    env = {**os.environ, "SCRIPTS_ONLY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", os.path.join("results", "ppd_pace.sh")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    original = open(os.path.join(ROOT, "ppd_mujoco.py")).read().splitlines()
    changed = {}
    for variant in ("eq2", "detach_ratio", "distill_only", "distill_only_detach"):
        lines = open(tmp_path / "scripts" / f"ppd_mujoco_{variant}.py").read().splitlines()
        assert len(lines) == len(original)
        changed[variant] = [line.strip() for a, line in zip(original, lines) if a != line]
    assert changed["eq2"] == []
    assert changed["detach_ratio"] == ['distill_ratio: Literal["eq2", "stopgrad"] = "stopgrad"']
    assert changed["distill_only"] == ["loss = distill_lambda * distill_loss  # Eq. 2"]
    assert changed["distill_only_detach"] == changed["detach_ratio"] + changed["distill_only"]

    def ppd_loss_of(variant):
        path = tmp_path / "scripts" / f"ppd_mujoco_{variant}.py"
        spec = importlib.util.spec_from_file_location(f"pace_{variant}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return lambda *a: module.ppd_loss(*a, ratio_grad=module.Args().distill_ratio == "eq2")  # as train() calls it

    kl, ratio = torch.tensor([2.0, 3.0]), torch.tensor([1.1, 0.5], requires_grad=True)
    losses = {v: ppd_loss_of(v)(kl, ratio, 0.2) for v in ("eq2", "detach_ratio")}
    assert torch.allclose(losses["eq2"], losses["detach_ratio"])  # (2 * 1.1 + 3 * 0.8) / 2
    assert abs(losses["eq2"].item() - 2.3) < 1e-6
    (grad,) = torch.autograd.grad(losses["eq2"], ratio)
    assert torch.allclose(grad, torch.tensor([1.0, 0.0]))  # KL / 2 where r > 1 - eps: the term the variant drops
    assert not losses["detach_ratio"].requires_grad


def test_ppd_pace_summary_starts_from_the_grid_run():
    """The committed summary: 2 students x 4 variants x 4 evaluations, and its unchanged variant reproduces the
    grid's seed-1 run of the same student at 100k steps (same seed, same code: the variants differ by one line)."""
    with open(os.path.join(ROOT, "results", "ppd_pace", "summary.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32 and {r["variant"] for r in rows} == {
        "eq2",
        "detach_ratio",
        "distill_only",
        "distill_only_detach",
    }
    for student in ("smaller", "larger"):
        with open(os.path.join(RUNS, f"HalfCheetah-v4__ppd__{student}__1", "curves.csv")) as f:
            grid = {int(r["step"]): float(r["value"]) for r in csv.DictReader(f) if r["tag"] == "eval/episodic_return"}
        eq2 = {
            int(r["step"]): float(r["eval_return"]) for r in rows if r["student"] == student and r["variant"] == "eq2"
        }
        assert abs(eq2[100224] - grid[100224]) < 0.1, (student, eq2[100224], grid[100224])


def test_the_committed_stopgrad_pace_tables_are_fresh():
    """results/stopgrad/pace*.md are what results/stopgrad/pace.py makes of the committed runs (collect_run.sh
    rewrites them with every run that lands), and the paired table compares each method on the same teachers."""
    for extra, name in (([], "pace.md"), (["--paired"], "pace_paired.md")):
        proc = run_main("results/stopgrad/pace.py", extra, ROOT)
        with open(os.path.join(ROOT, "results", "stopgrad", name)) as f:
            assert proc.stdout == f.read() + "\n", name
    with open(os.path.join(ROOT, "results", "stopgrad", "pace_paired.md")) as f:
        rows = [line.split(" | ") for line in f if line.startswith("| 0")]
    runs = {}
    for row in rows:
        runs.setdefault((row[0], row[1]), set()).add(row[3])
    assert runs and all(len(counts) == 1 for counts in runs.values()), runs  # same number of runs per method
    # "late": the mean of a run's 10-episode evaluations from 1.5M steps on, as a fraction of its teacher's score
    name = "Hopper-v4__ppd_stopgrad__larger__2"
    with open(os.path.join(RUNS, name, "curves.csv")) as f:
        late = [
            float(r["value"])
            for r in csv.DictReader(f)
            if r["tag"] == "eval/episodic_return" and int(r["step"]) >= 1_500_000
        ]
    teacher = json.load(open(os.path.join(ROOT, "teachers", "Hopper-v4__2.json")))["evaluation"]["mean"]
    with open(os.path.join(ROOT, "results", "stopgrad", "pace.md")) as f:
        row = next(line.split(" | ") for line in f if line.startswith(f"| {name} |"))
    assert len(late) == 5 and float(row[-2]) == round(sum(late) / len(late) / teacher, 2), (row, late)


def test_episode_curve_writes_every_episode_bins_them_and_keeps_earlier_rows(teacher_runs, tmp_path):
    """results/episode_curve.py (the curves of the teachers trained in pieces): one row per logged episode, or
    per bin of steps with the count and mean; rows of an existing CSV before the run's first event are kept
    (a run resumed on another machine has only its new events)."""
    run = teacher_runs["mujoco"][0] / "runs" / "tiny"
    episodes = read_scalars(str(run))["charts/episodic_return"]
    assert len(episodes) >= 3
    out = tmp_path / "curve.csv"
    run_main("results/episode_curve.py", [run, out], ROOT)
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "episodic_return"]
    assert [(int(s), float(v)) for s, v in rows[1:]] == [(s, round(v, 2)) for s, v in episodes]

    first = episodes[0][0]
    with open(out, "w") as f:  # an earlier piece's rows: one before this run's events, one the events replace
        f.write(f"step,episodic_return\n{first - 1},-5.0\n{first},123456.0\n")
    run_main("results/episode_curve.py", [run, out], ROOT)
    with open(out) as f:
        rows = list(csv.reader(f))[1:]
    assert rows[0] == [str(first - 1), "-5.0"] and len(rows) == len(episodes) + 1 and "123456.0" not in rows[1]

    binned = tmp_path / "binned.csv"
    run_main("results/episode_curve.py", [run, binned, "--bin", 128], ROOT)
    with open(binned) as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["episodes"]) for r in rows) == len(episodes)
    for row in rows:
        end = int(row["step"])
        values = [v for s, v in episodes if end - 128 < s <= end]
        assert end % 128 == 0 and int(row["episodes"]) == len(values)
        assert float(row["mean_return"]) == pytest.approx(sum(values) / len(values), abs=0.006)
