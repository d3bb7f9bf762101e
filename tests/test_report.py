"""tools/report.py on a synthetic runs folder with known numbers: real eval.json files and real tensorboard
events; the tables must hold the hand-computed values."""

import csv
import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT, one_error_line, run_main

sys.path.insert(0, os.path.join(ROOT, "tools"))
import report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUITE_OF = {
    "Hopper-v4": "mujoco",
    "HalfCheetah-v4": "mujoco",
    "Pong-v5": "atari",
    "coinrun": "procgen",
    "jumper": "procgen",
}


def evaluation(mean, levels=None):
    return {"episodes": 2, "deterministic": True, "levels": levels, "returns": [mean, mean], "mean": mean, "std": 0.0}


def write_run(root, name, info, curves=None):
    """eval.json (unless info is None: an unfinished run) and tensorboard scalars {tag: [(step, value)]}."""
    from torch.utils.tensorboard import SummaryWriter

    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    writer = SummaryWriter(folder)
    for tag, points in (curves or {"charts/episodic_return": [(0, 0.0)]}).items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()
    if info is not None:
        with open(os.path.join(folder, "eval.json"), "w") as f:
            json.dump(info, f)


def teacher_hash(env, seed):
    """Stands for the sha256 of a teacher file (the report only compares them)."""
    return f"sha-{env}-{seed}"


def teacher(root, env, seed, score, train_score=None):
    info = {
        "method": "ppo",
        "suite": SUITE_OF[env],
        "env_id": env,
        "seed": seed,
        "student_size": None,
        "checkpoint_sha256": teacher_hash(env, seed),
        "evaluation": evaluation(score, "test" if train_score is not None else None),
        "evaluation_train_levels": evaluation(train_score, "train") if train_score is not None else None,
    }
    write_run(root, f"{env}__teacher__{seed}", info)


def student(
    root,
    env,
    seed,
    method,
    size,
    score,
    sigma=0.0,
    lam=1.0,
    teacher_score=None,
    train_score=None,
    curves=None,
    script=None,
):
    """A student's run folder; script: the file that ran it (a name none of the project's scripts has: a copy)."""
    info = {
        "method": method,
        "suite": SUITE_OF[env],
        "env_id": env,
        "seed": seed,
        "student_size": size,
        "evaluation": evaluation(score),
        "evaluation_train_levels": evaluation(train_score, "train") if train_score is not None else None,
        "teacher": {
            "path": f"teachers/{env}__{seed}.pt",
            "sha256": teacher_hash(env, seed),
            "corruption_sigma": sigma,
            "evaluation": evaluation(teacher_score) if teacher_score is not None else None,
        },
        "distill_lambda": lam if method == "ppd" else None,
        **({"script": script} if script else {}),
    }
    name = (
        f"{env}__{method}__{size}__{seed}"
        + (f"__sigma{sigma}" if sigma else "")
        + (f"__lambda{lam}" if lam != 1.0 else "")
    )
    write_run(root, name, info, curves)
    return name


def ramp(final, steps=(1000, 2000, 3000, 4000)):
    return [(s, final * (i + 1) / len(steps)) for i, s in enumerate(steps)]


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("runs"))
    teacher(root, "Hopper-v4", 1, 1000.0)
    teacher(root, "Hopper-v4", 2, 2000.0)
    teacher(root, "HalfCheetah-v4", 1, 500.0)
    teacher(root, "Pong-v5", 1, 14.6)  # human-normalised: exactly 1.0
    teacher(root, "coinrun", 1, 5.0, train_score=8.0)
    # Mujoco, larger PPD: fractions 1.2, 0.6, 1.0
    student(root, "Hopper-v4", 1, "ppd", "larger", 1200.0, curves={"charts/episodic_return": ramp(1200.0)})
    student(root, "Hopper-v4", 2, "ppd", "larger", 1200.0, curves={"charts/episodic_return": ramp(1200.0)})
    student(root, "HalfCheetah-v4", 1, "ppd", "larger", 500.0, curves={"charts/episodic_return": ramp(500.0)})
    student(root, "Hopper-v4", 1, "student_distill", "larger", -50.0)  # fraction -0.05: raised to 0.01
    # teacher-distill with both curves: the figures must use eval/ (its own trajectories), not charts/
    student(
        root,
        "Hopper-v4",
        1,
        "teacher_distill",
        "larger",
        1000.0,
        curves={"charts/episodic_return": ramp(3000.0), "eval/episodic_return": ramp(700.0)},
    )
    student(root, "Hopper-v4", 3, "teacher_distill", "smaller", 700.0)  # no teacher of seed 3
    write_run(root, "Hopper-v4__ppd__same__1", None)  # unfinished: events, no eval.json
    # imperfect teacher: corrupted 400 of the original 1000
    student(root, "Hopper-v4", 1, "ppd", "larger", 800.0, sigma=0.05, teacher_score=400.0)
    student(root, "Hopper-v4", 1, "student_distill", "larger", 500.0, sigma=0.05, teacher_score=400.0)
    # lambda sweep: not part of Table 1
    student(root, "Hopper-v4", 1, "ppd", "larger", 300.0, lam=2.0, curves={"charts/episodic_return": ramp(300.0)})
    # Atari: raw -3.05 is human-normalised (-3.05 + 20.7) / 35.3 = 0.5
    student(root, "Pong-v5", 1, "ppd", "same", -3.05)
    # Procgen: test 4 of 5, train 4 of 8
    student(root, "coinrun", 1, "ppd", "smaller", 4.0, train_score=4.0)
    return root


@pytest.fixture(scope="module")
def made_report(runs_folder, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report"))
    extracted = str(tmp_path_factory.mktemp("extracted"))
    text = report.report(report.Args(runs_dir=runs_folder, out_dir=out, extract_to=extracted, bootstrap_reps=4000))
    return text, out, extracted


def table_rows(text, heading):
    """The rows of the markdown table under a '## heading' line, as lists of cells."""
    section = text.split(f"## {heading}")[1].split("\n## ")[0]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


def test_statistics_against_hand_computed_values():
    assert report.iqm(np.arange(1, 9)) == 4.5  # middle four of 1..8
    assert report.iqm([1, 2, 3, 4, 100]) == 3.0  # int(5/4) = 1 cut from each end
    assert report.geometric_mean([0.5, 2.0], 0.01) == (pytest.approx(1.0), 0)
    assert report.geometric_mean([-1.0, 1.0], 0.01) == (pytest.approx(0.1), 1)
    # stratified: each env keeps its count, so two constant envs give a point interval (an unstratified
    # bootstrap of the pooled values would not)
    assert report.stratified_bootstrap_ci([[1, 1, 1, 1], [3, 3, 3, 3]], reps=500) == (2.0, 2.0)
    # one env with values {0, 1}: resampled means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert report.stratified_bootstrap_ci([[0.0, 1.0]], reps=4000) == (0.0, 1.0)
    assert report.stratified_bootstrap_ci([[0.0, 1.0]], reps=4000, size=0.4) == (0.5, 0.5)


def test_intervals_are_rliables():
    """The IQM interval and the probability of improvement are rliable's own, called directly on the matrix."""
    from rliable import library, metrics

    scores = np.array([[0.9, 0.5, 1.2], [1.1, 0.7, 0.8], [1.0, 0.2, 1.4]])  # runs x envs
    np.random.seed(3)
    _, direct = library.get_interval_estimates(
        {"x": [scores[:, [m]] for m in range(3)]},
        lambda *xs: np.array([metrics.aggregate_iqm(np.concatenate(xs))]),
        reps=300,
    )
    assert report.stratified_bootstrap_ci(list(scores.T), reps=300, seed=3) == tuple(direct["x"][:, 0])
    assert report.iqm(scores) == metrics.aggregate_iqm(scores)
    other = scores - np.array([[0.3], [-0.1], [0.2]])
    np.random.seed(5)
    point, direct = library.get_interval_estimates(
        {"p": [scores, other]}, lambda x, y: np.array([metrics.probability_of_improvement(x, y)]), reps=100
    )
    assert report.probability_of_improvement(scores, other, reps=100, seed=5) == (point["p"][0], *direct["p"][:, 0])
    # by hand: env 0 has runs (0.9, 1.1, 1.0) against (0.6, 1.2, 0.8): 6 of 9 pairs greater, 0 ties
    assert metrics.probability_of_improvement(scores[:, :1], other[:, :1]) == pytest.approx(6 / 9)
    assert report.probability_of_improvement([[2.0], [3.0]], [[0.0], [1.0]], reps=50)[0] == 1.0


def paired_grid(root: str, half_cheetah_seeds=(1, 2)) -> None:
    """Hopper at seeds 1 and 2, HalfCheetah at half_cheetah_seeds: teachers and three larger students each, every
    student's two episodes at its mean -+ 1% of the teacher (an SE of 0.01 of the teacher)."""
    for env, base, seeds in (("Hopper-v4", 1000.0, (1, 2)), ("HalfCheetah-v4", 500.0, half_cheetah_seeds)):
        for seed in seeds:
            teacher(root, env, seed, base)
            student(root, env, seed, "ppd", "larger", base * (1.1 + 0.02 * seed))  # 1.12, 1.14
            student(root, env, seed, "student_distill", "larger", base * (0.9 + 0.02 * seed))  # 0.92, 0.94
            student(root, env, seed, "teacher_distill", "larger", base * (1.1 if seed == 1 else 0.6))
    for name in os.listdir(root):  # episodes mean -+ 1% of the teacher: each student's SE is 0.01 of the teacher
        path = os.path.join(root, name, "eval.json")
        info = json.load(open(path))
        if info["method"] != "ppo":
            mean, spread = info["evaluation"]["mean"], (1000.0 if info["env_id"] == "Hopper-v4" else 500.0) / 100
            info["evaluation"]["returns"] = [mean - spread, mean + spread]
            json.dump(info, open(path, "w"))


def test_comparisons_and_runs_tables(tmp_path):
    """comparisons.csv: paired differences by teacher, rliable's interval and P(A > B), the docs' reading;
    runs.csv: each run's SE of its episodes and its z against its teacher, by hand."""
    root = str(tmp_path / "runs")
    paired_grid(root)
    out = str(tmp_path / "report")
    text = report.report(report.Args(runs_dir=root, out_dir=out, bootstrap_reps=500, poi_reps=50))
    with open(os.path.join(out, "comparisons.csv")) as f:
        rows = {(r["row"], r["a"], r["b"]): r for r in csv.DictReader(f)}
    ppd_sd = rows[("mujoco", "ppd", "sd")]
    assert ppd_sd["pairs"] == "4" and float(ppd_sd["mean_diff"]) == pytest.approx(0.2)  # every pair 0.2 apart
    assert float(ppd_sd["diff_low"]) == pytest.approx(0.2) and float(ppd_sd["diff_high"]) == pytest.approx(0.2)
    assert ppd_sd["p_improve"] == "1" and ppd_sd["reading"] == "above"
    # evaluation noise of the mean of 4 differences, each of two SEs of 0.01: sqrt(8 * 0.01 ** 2) / 4
    assert float(ppd_sd["z_episodes"]) == pytest.approx(0.2 / (np.sqrt(8e-4) / 4), rel=1e-5)
    # ppd - td: +0.02 (seed 1) and +0.54 (seed 2) per env; the interval is rliable's over the two envs' pairs
    ppd_td = rows[("mujoco", "ppd", "td")]
    assert float(ppd_td["mean_diff"]) == pytest.approx(0.28)
    diffs = [np.array([[0.02], [0.54]]), np.array([[0.02], [0.54]])]
    _, low, high = report.rliable_estimate(diffs, lambda *xs: np.mean(np.concatenate(xs)), 500, 0.95, 0)
    assert (float(ppd_td["diff_low"]), float(ppd_td["diff_high"])) == (
        pytest.approx(low, abs=1e-5),
        pytest.approx(high, abs=1e-5),
    )
    assert ppd_td["reading"] == "above" and ppd_td["p_improve"] == "1"  # per env: all 4 run pairs greater
    sd_td = rows[("mujoco", "sd", "td")]  # -0.18 and +0.34: the interval holds zero
    assert float(sd_td["diff_low"]) < 0 < float(sd_td["diff_high"]) and sd_td["reading"] == "level within noise"
    assert rows[("Hopper-v4", "ppd", "sd")]["p_improve"] == ""  # env rows: the difference only
    assert (
        "| Table 1 | mujoco | larger | ppd − sd | 4 | +0.200 [+0.200, +0.200] | 1.00 [1.00, 1.00] | 28.3 | above |"
        in text
    )
    # the rule: an interval over seeds that excludes zero is not enough when the evaluations' noise is larger
    assert report.reading(0.01, 0.05, 1.5) == "level within noise" and report.reading(0.01, 0.05, 2.5) == "above"
    assert report.reading(-0.05, -0.01, -3.0) == "below" and report.reading(None, None, 3.0) == "above"
    assert report.reading(-0.01, 0.05, 9.0) == "level within noise"
    with open(os.path.join(out, "runs.csv")) as f:
        runs = {r["run"]: r for r in csv.DictReader(f)}
    # episodes 1110 and 1130: SE 10; the teacher's two equal episodes have none, so z = 120 / 10
    hopper = runs["Hopper-v4__ppd__larger__1"]
    assert (float(hopper["score"]), float(hopper["se"]), float(hopper["teacher_score"])) == (1120.0, 10.0, 1000.0)
    assert float(hopper["teacher_se"]) == 0.0 and float(hopper["z_teacher"]) == pytest.approx(12.0)
    assert report.standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert report.z_score(10.0, 3.0, 6.0, 4.0) == pytest.approx(0.8)  # 4 / hypot(3, 4)


def test_sizes_of_one_method_are_paired_by_teacher(tmp_path):
    """The paper's size ordering (Table 1): each method's smaller − same-size students of the same teacher, with
    the interval and reading of the method pairs, on test levels (Table 1) and training levels (Table 7)."""
    root = str(tmp_path / "runs")
    for env, base in (("coinrun", 10.0), ("jumper", 5.0)):
        for seed in (1, 2):
            teacher(root, env, seed, base, train_score=base)
            # PPD: smaller 0.8 of the teacher, same-size 0.9 (coinrun) and 1.0 (jumper); training levels 0.9 and 1.0
            for size, fraction, train in (("smaller", 0.8, 0.9), ("same", 0.9 if env == "coinrun" else 1.0, 1.0)):
                student(root, env, seed, "ppd", size, base * fraction, train_score=base * train)
            for size in ("smaller", "same"):  # student-distill: 0.9 at both sizes
                student(root, env, seed, "student_distill", size, base * 0.9, train_score=base * 0.9)
            for size, fraction in (("smaller", 0.6), ("same", 0.9)):  # a copied script: its own method, its sizes
                student(root, env, seed, "my_sd", size, base * fraction, train_score=base, script="my_sd_procgen.py")
    out = str(tmp_path / "report")
    text = report.report(report.Args(runs_dir=root, out_dir=out, bootstrap_reps=200, poi_reps=20))
    with open(os.path.join(out, "comparisons.csv")) as f:
        rows = {(r["table"], r["row"], r["size"], r["a"], r["b"]): r for r in csv.DictReader(f)}
    test = rows[("1", "procgen", "sizes", "smaller ppd", "same ppd")]  # coinrun -0.1, jumper -0.2, two seeds each
    assert test["pairs"] == "4" and float(test["mean_diff"]) == pytest.approx(-0.15)
    assert float(test["diff_low"]) == pytest.approx(-0.15) and float(test["diff_high"]) == pytest.approx(-0.15)
    assert float(rows[("7", "procgen (train)", "sizes", "smaller ppd", "same ppd")]["mean_diff"]) == pytest.approx(-0.1)
    assert float(rows[("1", "jumper", "sizes", "smaller ppd", "same ppd")]["mean_diff"]) == pytest.approx(-0.2)
    assert float(rows[("1", "procgen", "sizes", "smaller sd", "same sd")]["mean_diff"]) == pytest.approx(0.0)
    copied = rows[("1", "procgen", "sizes", "smaller my_sd_procgen", "same my_sd_procgen")]
    assert float(copied["mean_diff"]) == pytest.approx(-0.3)
    assert not any(key[4].startswith("larger") or key[3] == "same ppd" for key in rows)  # no larger students
    # the method pairs are unchanged beside them: PPD - SD per size
    assert float(rows[("1", "procgen", "same", "ppd", "sd")]["mean_diff"]) == pytest.approx(0.05)
    assert "| Table 1 | procgen | sizes | smaller ppd − same ppd | 4 | -0.150 [-0.150, -0.150] |" in text


def test_a_row_with_an_env_at_one_seed_has_no_interval(tmp_path):
    """Hopper at two seeds, HalfCheetah at one: a stratified interval would hold Hopper's seed spread alone, so
    the suite row has none and its reading is the evaluations' z, as a single pair's is."""
    root = str(tmp_path / "runs")
    paired_grid(root, half_cheetah_seeds=(1,))
    out = str(tmp_path / "report")
    text = report.report(report.Args(runs_dir=root, out_dir=out, bootstrap_reps=500, poi_reps=50))
    with open(os.path.join(out, "comparisons.csv")) as f:
        rows = {(r["row"], r["a"], r["b"]): r for r in csv.DictReader(f)}
    ppd_td = rows[("mujoco", "ppd", "td")]  # Hopper +0.02 and +0.54, HalfCheetah +0.02
    assert ppd_td["pairs"] == "3" and float(ppd_td["mean_diff"]) == pytest.approx(0.58 / 3, abs=1e-6)
    assert ppd_td["diff_low"] == ppd_td["diff_high"] == ppd_td["p_improve"] == ""
    # three differences, each of two SEs of 0.01: noise sqrt(6 * 0.01 ** 2) / 3
    assert float(ppd_td["z_episodes"]) == pytest.approx((0.58 / 3) / (np.sqrt(6e-4) / 3), rel=1e-4)
    assert ppd_td["reading"] == "above"
    assert "| Table 1 | mujoco | larger | ppd − td | 3 | +0.193 | – | 23.7 | above |" in text
    hopper = rows[("Hopper-v4", "ppd", "td")]  # an env row with two pairs keeps its interval
    assert float(hopper["diff_low"]) <= 0.02 + 1e-6 and float(hopper["diff_high"]) >= 0.54 - 1e-6


def test_one_pair_has_no_interval(made_report):
    _, out, _ = made_report
    with open(os.path.join(out, "comparisons.csv")) as f:
        rows = {(r["table"], r["row"], r["a"], r["b"]): r for r in csv.DictReader(f)}
    row = rows[("1", "Hopper-v4", "ppd", "td")]  # Hopper seed 1: 1.2 against 1.0
    assert row["pairs"] == "1" and float(row["mean_diff"]) == pytest.approx(0.2)
    # no interval over seeds, and two equal episodes each: no noise to measure either, so no reading either way
    assert row["diff_low"] == "" and row["z_episodes"] == "nan" and row["reading"] == "level within noise"
    corrupted = rows[("2", "Hopper-v4 (σ=0.05)", "ppd", "corrupted teacher")]  # 0.8 against 0.4
    assert float(corrupted["mean_diff"]) == pytest.approx(0.4)


def test_a_report_is_the_same_when_scores_move_by_one_ulp(runs_folder, tmp_path):
    """Every number is written at 6 significant digits: last-bit differences of numpy builds and CPUs
    (AVX2 against AVX-512 log / exp) do not reach the files."""
    import shutil

    moved = str(tmp_path / "moved")
    shutil.copytree(runs_folder, moved)
    for name in os.listdir(moved):
        path = os.path.join(moved, name, "eval.json")
        if not os.path.isfile(path):
            continue
        info = json.load(open(path))
        evaluations = [
            info.get("evaluation"),
            info.get("evaluation_train_levels"),
            (info.get("teacher") or {}).get("evaluation"),
        ]
        for ev in filter(None, evaluations):
            ev["mean"] = float(np.nextafter(ev["mean"], np.inf))
            ev["returns"] = [float(np.nextafter(r, -np.inf)) for r in ev["returns"]]
        with open(path, "w") as f:
            json.dump(info, f)
    outs = []
    for folder in (runs_folder, moved):
        outs.append(str(tmp_path / f"report_{len(outs)}"))
        report.report(report.Args(runs_dir=folder, out_dir=outs[-1], bootstrap_reps=300, poi_reps=20))
    names = sorted(n for n in os.listdir(outs[0]) if n.endswith(".csv"))
    assert "comparisons.csv" in names and "runs.csv" in names
    for name in names + ["report.md"]:
        first = open(os.path.join(outs[0], name)).read()
        second = open(os.path.join(outs[1], name)).read()
        if name == "report.md":
            first, second = (t.replace(runs_folder, "").replace(moved, "") for t in (first, second))
        assert first == second, name


def test_table1_values(made_report):
    text, out, _ = made_report
    header, *rows = table_rows(text, "Table 1: fraction of teacher, geometric mean")
    assert header[:5] == ["env", "teacher score", "smaller td", "smaller sd", "smaller ppd"]
    table = {row[0]: dict(zip(header, row)) for row in rows}
    assert set(table) == {"atari", "mujoco", "procgen", "all"}
    assert table["mujoco"]["larger ppd"] == "0.90"  # (1.2 * 0.6 * 1.0) ** (1/3) = 0.8963
    assert table["mujoco"]["larger sd"] == "0.01*†"  # -0.05 raised to the 0.01 floor; one of the row's two envs
    assert table["mujoco"]["larger td"] == "1.00†"  # one env: marked as a cell over fewer envs than its row
    assert table["mujoco"]["teacher score"] == "–"  # two envs' raw scores (1500, 500) do not average
    assert table["atari"]["same ppd"] == "0.50" and table["atari"]["teacher score"] == "1.00"
    assert table["procgen"]["smaller ppd"] == "0.80"  # test levels
    assert table["all"]["larger ppd"] == "0.90†" and table["all"]["smaller td"] == "–"
    assert "\n11 distillation runs and 5 teacher runs. Fractions" in text  # the unfinished run is not counted
    header, *rows = table_rows(text, "Table 1: IQM [95% CI]")
    mujoco = dict(zip(header, next(r for r in rows if r[0] == "mujoco")))
    # IQM of (1.2, 0.6, 1.0) = their mean 0.933; resampling Hopper's two seeds gives 0.733, 0.933 or 1.133
    assert mujoco["larger ppd"] == "0.93 [0.73, 1.13]"
    with open(os.path.join(out, "table1.csv")) as f:
        cells = {(r["suite"], r["size"], r["method"]): r for r in csv.DictReader(f)}
    assert float(cells[("mujoco", "larger", "ppd")]["geomean"]) == pytest.approx(0.72 ** (1 / 3))
    assert cells[("mujoco", "larger", "ppd")]["n"] == "3"
    assert cells[("mujoco", "larger", "sd")]["raised"] == "1"


def test_table2_5_7_values(made_report):
    text, out, _ = made_report
    header, *rows = table_rows(text, "Tables 2, 6 and 8")
    table = {row[0]: dict(zip(header, row)) for row in rows}
    hopper = table["Hopper-v4 (σ=0.05)"]
    assert hopper["original teacher score"] == "1000.00" and hopper["corrupted teacher"] == "0.40x"
    assert (hopper["larger ppd"], hopper["larger sd"], hopper["larger td"]) == ("0.80", "0.50", "–")
    assert table["mujoco (σ=0.05)"]["larger ppd"] == "0.80"
    header, *rows = table_rows(text, "Table 5")
    table = {row[0]: dict(zip(header, row)) for row in rows}
    assert table["Hopper-v4"]["teacher score"] == "1500.00" and table["Hopper-v4"]["larger ppd"] == "1200.00"
    assert table["Pong-v5"]["same ppd"] == "0.50"  # human-normalised
    assert table["Hopper-v4"]["smaller td"] == "–"  # its only run has no teacher
    header, *rows = table_rows(text, "Table 7")
    table = {row[0]: dict(zip(header, row)) for row in rows}
    assert table["procgen (train)"]["teacher score"] == "8.00" and table["procgen (train)"]["smaller ppd"] == "0.50"
    assert table["procgen (test)"]["teacher score"] == "5.00" and table["procgen (test)"]["smaller ppd"] == "0.80"


def test_missing_pieces_are_named(made_report):
    text, _, _ = made_report
    left_out = text.split("## Left out")[1]
    assert "Hopper-v4__ppd__same__1: no eval.json (unfinished run)" in left_out
    assert (
        f"Hopper-v4__teacher_distill__smaller__3: no evaluation of its teacher (teachers/Hopper-v4__3.pt, sha256 "
        f"{teacher_hash('Hopper-v4', 3)[:12]}) among the teacher runs or teacher .json files; left out"
    ) in left_out


def test_figures_and_curves(made_report, runs_folder):
    _, out, _ = made_report
    for name in ("figure1_mujoco.png", "figure1_atari.png", "figure1_procgen.png", "figure2_mujoco.png"):
        with open(os.path.join(out, name), "rb") as f:
            assert f.read(8) == PNG_MAGIC, name
    runs = report.load_runs(runs_folder, [])
    scorer = report.Scorer(runs, report.Args().atari_scores, [])
    td = next(r for r in runs if r.name == "Hopper-v4__teacher_distill__larger__1")
    tag, steps, values = report.normalised_curve(td, scorer, [])
    assert tag == "eval/episodic_return"  # the honest curve, not the teacher's trajectories
    assert list(steps) == [1000, 2000, 3000, 4000] and values == pytest.approx([0.175, 0.35, 0.525, 0.7])


def test_curve_band_against_hand_computed_values():
    """The shaded band of the figures: min-max of the runs below 5 runs, a bootstrap 95% interval of the mean
    from 5 runs up, on the common grid that ends at the shortest run's last step."""
    a = (np.array([0, 10]), np.array([0.0, 1.0]))
    b = (np.array([0, 5, 10]), np.array([1.0, 1.0, 3.0]))
    c = (np.array([0, 12]), np.array([2.0, 2.0]))  # runs longer: the grid stops at 10
    grid, mean, low, high = report.curve_band([a, b, c], points=3)
    assert list(grid) == [0, 5, 10]
    assert mean == pytest.approx([1.0, 3.5 / 3, 2.0])
    assert list(low) == [0.0, 0.5, 1.0] and list(high) == [2.0, 2.0, 3.0]
    assert report.band_kind(3) == report.band_kind(4) == "min–max"
    # five constant runs, three at 1 and two at 0: a resampled mean is Binomial(5, 0.6) / 5, whose 2.5% and
    # 97.5% quantiles are 0.2 (P(X=0) = 1%) and 1.0 (P(X=5) = 7.8%); min-max would be 0 and 1
    flat = [(np.array([0, 10]), np.array([v, v])) for v in (1.0, 0.0, 1.0, 0.0, 1.0)]
    grid, mean, low, high = report.curve_band(flat, points=4)
    assert mean == pytest.approx([0.6] * 4) and low == pytest.approx([0.2] * 4) and high == pytest.approx([1.0] * 4)
    assert report.band_kind(5) == "bootstrap 95% CI"
    again = report.curve_band(flat, points=4)
    assert all(np.array_equal(x, y) for x, y in zip(again, (grid, mean, low, high)))  # a fixed seed


def test_figures_draw_a_band_per_curve_and_name_it(runs_folder, tmp_path, monkeypatch):
    """Every curve of Figures 1 and 2 has its shaded band (the min-max of its runs here, fewer than 5) and its
    legend entry says so."""
    drawn = {}

    def capture(fig, path):
        drawn[os.path.basename(path)] = [
            (
                [t.get_text() for t in ax.get_legend().get_texts()],
                [
                    (line.get_label(), line.get_ydata())
                    for line in ax.get_lines()
                    if not line.get_label().startswith("_")
                ],
                [poly.get_paths()[0].vertices[:, 1] for poly in ax.collections],
            )
            for ax in fig.axes
        ]

    monkeypatch.setattr(report, "save_figure", capture)
    problems = []
    runs = report.load_runs(runs_folder, problems)
    scorer = report.Scorer(runs, report.Args().atari_scores, problems)
    report.figure1(runs, scorer, str(tmp_path), problems)
    report.figure2(runs, scorer, str(tmp_path), problems, report.Args())
    texts, lines, bands = drawn["figure1_mujoco.png"][2]  # the larger students' panel
    assert texts == [
        "td (eval/episodic_return; 1 run; band: min–max)",
        "sd (charts/episodic_return; 1 run; band: min–max)",
        "ppd (charts/episodic_return; 3 runs; band: min–max)",
        "teacher",
    ]
    assert len(bands) == 3 and [label for label, _ in lines] == texts  # a band per method, none for the teacher
    # ppd: the three ramps rise linearly from step 1000 to 4000 to fractions 1.2 (Hopper seed 1), 0.6 (Hopper
    # seed 2) and 1.0 (HalfCheetah), so the band runs from the 0.6 ramp to the 1.2 ramp: 0.15 to 1.2
    ppd = [
        report.normalised_curve(r, scorer, [])[1:]
        for r in runs
        if r.method == "ppd" and r.size == "larger" and r.is_main_grid and r.suite == "mujoco"
    ]
    grid, mean, low, high = report.curve_band(ppd)
    assert high == pytest.approx(1.2 * grid / 4000) and low == pytest.approx(0.6 * grid / 4000)
    assert mean == pytest.approx(2.8 / 3 * grid / 4000) and lines[2][1] == pytest.approx(mean)
    assert (np.min(bands[2]), np.max(bands[2])) == pytest.approx((0.15, 1.2))
    ((texts, _, bands),) = drawn["figure2_mujoco.png"]
    assert texts == ["λ=1 (0.85x; 2 runs; band: min–max)", "λ=2 (0.30x; 1 run; band: min–max)"]
    assert len(bands) == 2


def test_extracted_folder_gives_the_same_report(made_report, tmp_path):
    text, _, extracted = made_report
    assert sorted(os.listdir(os.path.join(extracted, "Hopper-v4__ppd__larger__1"))) == ["curves.csv", "eval.json"]
    again = report.report(report.Args(runs_dir=extracted, out_dir=str(tmp_path), bootstrap_reps=4000))

    def strip(text):  # the title names the folder
        return text.split("\n", 1)[1].split("## Left out")[0]

    assert strip(again) == strip(text)


def test_bad_runs_dir_is_one_line(tmp_path):
    proc = run_main(
        "tools/report.py", ["--runs-dir", tmp_path / "nope", "--out-dir", tmp_path / "out"], tmp_path, check=False
    )
    assert one_error_line(proc.stderr, proc.returncode) == f"error: runs folder '{tmp_path / 'nope'}' does not exist"
    assert not os.path.exists(tmp_path / "out")


def table1_cell(text, row, column):
    header, *rows = table_rows(text, "Table 1: fraction of teacher, geometric mean")
    return {r[0]: dict(zip(header, r)) for r in rows}[row][column]


def test_each_student_is_divided_by_its_own_teacher(tmp_path):
    """Two teachers of the same env and seed (different files: one overwritten by a short run) with a student
    each: each student is divided by the teacher whose file it loaded, never by the other."""
    runs = tmp_path / "runs"
    for name, sha, score in (("long", "sha-long", 3000.0), ("short", "sha-short", 100.0)):
        info = {
            "method": "ppo",
            "suite": "mujoco",
            "env_id": "Hopper-v4",
            "seed": 1,
            "student_size": None,
            "checkpoint_sha256": sha,
            "evaluation": evaluation(score),
            "evaluation_train_levels": None,
        }
        write_run(runs, f"teacher_{name}", info)
        student_info = {
            "method": "ppd",
            "suite": "mujoco",
            "env_id": "Hopper-v4",
            "seed": 1,
            "student_size": "larger",
            "evaluation": evaluation(300.0 if name == "short" else 2700.0),
            "evaluation_train_levels": None,
            "distill_lambda": 1.0,
            "teacher": {
                "path": "teachers/Hopper-v4__1.pt",
                "sha256": sha,
                "corruption_sigma": 0.0,
                "evaluation": evaluation(score),
            },
        }
        write_run(runs, f"student_of_{name}", student_info)
    text = report.report(report.Args(runs_dir=str(runs), out_dir=str(tmp_path / "out"), bootstrap_reps=100))
    # 2700 / 3000 = 0.9 and 300 / 100 = 3.0: geometric mean sqrt(2.7) = 1.64; mixing them up would give
    # 2700 / 100 or 300 / 3000 (or their mean teacher)
    assert table1_cell(text, "mujoco", "larger ppd") == f"{np.sqrt(0.9 * 3.0):.2f}"
    rows = list(csv.DictReader(open(tmp_path / "out" / "table5.csv")))
    assert rows[0]["teacher_score"] == "1550.00"  # both teachers of Hopper-v4, each counted once
    # the short teacher known twice, by its run and by the .json beside its file (as a teacher script leaves
    # them): still one teacher of 100 in Table 5, and the same fractions
    teachers = tmp_path / "teachers"
    teachers.mkdir()
    (teachers / "Hopper-v4__1.json").write_text(
        json.dumps(
            {
                "method": "ppo",
                "suite": "mujoco",
                "env_id": "Hopper-v4",
                "seed": 1,
                "student_size": None,
                "checkpoint_sha256": "sha-short",
                "evaluation": evaluation(100.0),
            }
        )
    )
    again = report.report(
        report.Args(
            runs_dir=str(runs), out_dir=str(tmp_path / "out2"), bootstrap_reps=100, teachers_dirs=(str(teachers),)
        )
    )
    assert table1_cell(again, "mujoco", "larger ppd") == f"{np.sqrt(0.9 * 3.0):.2f}"
    assert list(csv.DictReader(open(tmp_path / "out2" / "table5.csv")))[0]["teacher_score"] == "1550.00"


def test_quickstart_shape_shipped_teacher_and_one_student(tmp_path):
    """A shipped teacher is a file with its .json (no teacher run): a student of it is scored through the
    .json beside teacher.path; a student whose teacher file's hash differs is left out and named."""
    shipped = os.path.join(ROOT, "teachers", "Hopper-v4__1.json")
    teacher_info = json.load(open(shipped))
    runs = tmp_path / "runs"
    for name, sha in (("quickstart", teacher_info["checkpoint_sha256"]), ("other_teacher", "0" * 64)):
        info = {
            "method": "ppd",
            "suite": "mujoco",
            "env_id": "Hopper-v4",
            "seed": 1,
            "student_size": "same",
            "evaluation": evaluation(teacher_info["evaluation"]["mean"] / 2),
            "evaluation_train_levels": None,
            "distill_lambda": 1.0,
            "teacher": {
                "path": os.path.join(ROOT, "teachers", "Hopper-v4__1.pt"),
                "sha256": sha,
                "corruption_sigma": 0.0,
                "evaluation": None,
            },
        }
        write_run(runs, name, info)
    text = report.report(
        report.Args(runs_dir=str(runs), out_dir=str(tmp_path / "out"), bootstrap_reps=100, teachers_dirs=())
    )
    assert table1_cell(text, "mujoco", "same ppd") == "0.50"
    assert f"{teacher_info['evaluation']['mean']:.2f}" == table1_cell(text, "mujoco", "teacher score")
    assert "other_teacher: no evaluation of its teacher" in text.split("## Left out")[1]


def test_stopgrad_variant_is_its_own_column_never_averaged_with_eq2(tmp_path):
    """PPD runs with --distill-ratio stopgrad get their own 'ppd-sg' columns in Tables 1, 2 and 5 and their own
    curve in Figure 1; Eq. 2's 'ppd' cells keep only Eq. 2's runs. Without such runs there is no such column."""
    runs = str(tmp_path / "runs")
    teacher(runs, "Hopper-v4", 1, 1000.0)
    student(runs, "Hopper-v4", 1, "ppd", "larger", 900.0, curves={"charts/episodic_return": ramp(900.0)})
    plain = report.report(report.Args(runs_dir=runs, out_dir=str(tmp_path / "out0"), bootstrap_reps=100))
    assert "ppd-sg" not in plain
    staging = str(tmp_path / "staging")  # student() names runs by method: write the variant's apart, then move
    for sigma, score in ((0.0, 1100.0), (0.05, 700.0)):
        name = student(
            staging,
            "Hopper-v4",
            1,
            "ppd",
            "larger",
            score,
            sigma=sigma,
            teacher_score=500.0,
            curves={"charts/episodic_return": ramp(score)},
        )
        path = os.path.join(staging, name, "eval.json")
        info = json.load(open(path))
        info["distill_ratio"] = "stopgrad"
        json.dump(info, open(path, "w"))
        os.rename(os.path.join(staging, name), os.path.join(runs, name.replace("__ppd__", "__ppd_stopgrad__")))
    text = report.report(report.Args(runs_dir=runs, out_dir=str(tmp_path / "out"), bootstrap_reps=100))
    assert table1_cell(text, "mujoco", "larger ppd") == "0.90"
    assert table1_cell(text, "mujoco", "larger ppd-sg") == "1.10"
    header, *rows = table_rows(text, "Tables 2, 6 and 8")
    assert header[-1] == "larger ppd-sg" and rows[0][-1] == "0.70"
    rows = list(csv.DictReader(open(tmp_path / "out" / "table5.csv")))
    assert rows[0]["larger ppd"] == "900.00" and rows[0]["larger ppd-sg"] == "1100.00"


def test_a_teacher_runs_own_checkpoint_as_teacher(tmp_path):
    """A teacher run writes its policy twice: teachers/{env}__{seed}.pt (whose hash its eval.json records) and
    runs/T/checkpoint.pt (another hash). Real tiny runs: a student of each file is scored against run T, which
    counts as one teacher."""
    from conftest import TINY, TINY_TEACHER_NET, run_main

    run_main(
        "ppo_teacher_mujoco.py",
        [*TINY["mujoco"], *TINY_TEACHER_NET["mujoco"], "--total-timesteps", 256, "--run-name", "T"],
        cwd=tmp_path,
    )
    for name, path in (("of_run", os.path.join("runs", "T", "checkpoint.pt")), ("of_file", "teachers/Hopper-v4__1.pt")):
        run_main(
            "ppd_mujoco.py",
            [
                *TINY["mujoco"],
                "--num-steps",
                "16",
                "--total-timesteps",
                64,
                "--student",
                "same",
                "--teacher-path",
                path,
                "--run-name",
                name,
            ],
            cwd=tmp_path,
        )
    runs = tmp_path / "runs"
    text = report.report(
        report.Args(runs_dir=str(runs), out_dir=str(tmp_path / "out"), bootstrap_reps=100, teachers_dirs=())
    )
    assert "- nothing" in text.split("## Left out")[1] and "\n2 distillation runs and 1 teacher run. " in text
    teacher_score = json.load(open(runs / "T" / "eval.json"))["evaluation"]["mean"]
    students = [json.load(open(runs / name / "eval.json"))["evaluation"]["mean"] for name in ("of_run", "of_file")]
    cell = next(r for r in csv.DictReader(open(tmp_path / "out" / "table1.csv")) if r["method"] == "ppd")
    assert cell["n"] == "2" and float(cell["teacher_score"]) == pytest.approx(teacher_score, abs=0.005)
    assert teacher_score > 0 and float(cell["iqm"]) == pytest.approx(np.mean(students) / teacher_score)  # Hopper: alive
    (row,) = csv.DictReader(open(tmp_path / "out" / "table5.csv"))
    assert float(row["teacher_score"]) == pytest.approx(teacher_score, abs=0.005)


def test_curve_tags_choose_the_figures_curve(tmp_path):
    """--curve-tags charts/episodic_return draws the returns collected during distillation (Procgen: divided by
    the teacher's training-level score), the default the --eval-every evaluation (test levels); a tag the runs
    never write is refused with one line."""
    root = str(tmp_path / "runs")
    teacher(root, "coinrun", 1, 5.0, train_score=8.0)
    name = student(
        root,
        "coinrun",
        1,
        "ppd",
        "smaller",
        4.0,
        train_score=4.0,
        curves={"charts/episodic_return": ramp(4.0), "eval/episodic_return": ramp(3.0)},
    )
    runs = report.load_runs(root, [])
    scorer = report.Scorer(runs, report.Args().atari_scores, [])
    run = next(r for r in runs if r.name == name)
    tag, steps, values = report.normalised_curve(run, scorer, [])
    assert tag == "eval/episodic_return" and values == pytest.approx([0.15, 0.3, 0.45, 0.6])  # of 5.0 (test)
    tag, steps, values = report.normalised_curve(run, scorer, [], ("charts/episodic_return",))
    assert tag == "charts/episodic_return" and values == pytest.approx([0.125, 0.25, 0.375, 0.5])  # of 8.0 (train)
    text = report.report(
        report.Args(runs_dir=root, out_dir=str(tmp_path / "out"), curve_tags=("charts/episodic_return",))
    )
    assert "![figure1_procgen.png](figure1_procgen.png)" in text
    with pytest.raises(report.UsageError, match="--curve-tags takes .*not charts/SPS"):
        report.report(report.Args(runs_dir=root, out_dir=str(tmp_path / "out"), curve_tags=("charts/SPS",)))


@pytest.fixture
def procgen_ramps(tmp_path):
    """Two same-size coinrun PPD students whose test-level evaluations reach their teacher's score at 2M steps
    (fraction = step / 2M), and one of a corrupted teacher (Table 2's, at its teacher's score throughout)."""
    root = str(tmp_path / "runs")
    teacher(root, "coinrun", 1, 5.0, train_score=8.0)
    teacher(root, "coinrun", 2, 4.0, train_score=8.0)
    every_100k = range(100_000, 2_000_001, 100_000)
    for seed, top in ((1, 5.0), (2, 4.0)):
        curve = [(s, top * s / 2e6) for s in every_100k]
        student(root, "coinrun", seed, "ppd", "same", top, train_score=8.0, curves={"eval/episodic_return": curve})
    flat = [(s, 5.0) for s in every_100k]
    student(
        root, "coinrun", 1, "ppd", "same", 5.0, sigma=0.05, teacher_score=5.0, curves={"eval/episodic_return": flat}
    )
    return root


def test_procgen_pace_table_averages_the_evaluations_up_to_each_step(procgen_ramps, tmp_path):
    """The students' play during distillation (issue #38): at each of PACE_STEPS, the mean of a run's --eval-every
    evaluations in the 300k steps up to it, over the teacher's test-level score, averaged over seeds; corrupted
    teachers' runs are Table 2's, not this one's."""
    text = report.report(report.Args(runs_dir=procgen_ramps, out_dir=str(tmp_path / "out"), bootstrap_reps=100))
    header, *rows = table_rows(text, "Procgen: the students' play during distillation")
    assert header == ["game", "student", "method", "n", "at 0.3M", "at 0.5M", "at 1M", "at 2M"]
    # (0.05 + 0.1 + 0.15) / 3, (0.15 + 0.2 + 0.25) / 3, (0.4 + 0.45 + 0.5) / 3, (0.9 + 0.95 + 1.0) / 3
    assert rows == [["coinrun", "same", "ppd", "2", "0.10", "0.20", "0.45", "0.95"]]
    with open(tmp_path / "out" / "table_pace.csv") as f:
        assert list(csv.reader(f)) == [header, *rows]
    assert "![figure1_procgen_games.png](figure1_procgen_games.png)" in text


def test_procgen_figure1_has_a_panel_per_game(procgen_ramps, tmp_path, monkeypatch):
    """figure1_procgen_games.png: one panel per game of the same-size students (the paper's Figure 1 kind), each
    method's mean curve over its seeds; the corrupted teacher's run is not in it."""
    drawn = {}
    monkeypatch.setattr(report, "save_figure", lambda fig, path: drawn.update({os.path.basename(path): fig.axes}))
    runs = report.load_runs(procgen_ramps, [])
    scorer = report.Scorer(runs, report.Args().atari_scores, [])
    report.figure1(runs, scorer, str(tmp_path), [])
    (panel,) = drawn["figure1_procgen_games.png"]
    assert panel.get_title() == "coinrun: same-size student"
    ppd = next(line for line in panel.get_lines() if line.get_label().startswith("ppd"))
    assert ppd.get_label() == "ppd (eval/episodic_return; 2 runs; band: min–max)"
    assert ppd.get_ydata() == pytest.approx(ppd.get_xdata() / 2e6)  # both seeds' fraction: step / 2M


def test_table2_marks_a_suite_cell_that_lacks_some_envs(tmp_path):
    """A suite row of Table 2 averages over envs; a column with fewer of them (a grid in progress) is marked."""
    root = str(tmp_path / "runs")
    teacher(root, "Hopper-v4", 1, 1000.0)
    teacher(root, "HalfCheetah-v4", 1, 500.0)
    student(root, "Hopper-v4", 1, "ppd", "larger", 800.0, sigma=0.05, teacher_score=400.0)
    student(root, "Hopper-v4", 1, "student_distill", "larger", 500.0, sigma=0.05, teacher_score=400.0)
    student(root, "HalfCheetah-v4", 1, "ppd", "larger", 400.0, sigma=0.05, teacher_score=250.0)
    text = report.report(report.Args(runs_dir=root, out_dir=str(tmp_path / "out"), bootstrap_reps=100))
    header, *rows = table_rows(text, "Tables 2, 6 and 8")
    suite = dict(zip(header, next(row for row in rows if row[0] == "mujoco (σ=0.05)")))
    assert suite["corrupted teacher"] == "0.45x"  # sqrt(0.4 * 0.5), both envs
    assert suite["original teacher score"] == "–"  # 1000 and 500 of two envs do not average
    assert suite["larger ppd"] == "0.80" and suite["larger sd"] == f"0.50{report.PARTIAL_MARK}"
    hopper = dict(zip(header, next(row for row in rows if row[0] == "Hopper-v4 (σ=0.05)")))
    assert hopper["larger sd"] == "0.50" and hopper["original teacher score"] == "1000.00"  # its one env


def test_a_long_runs_returns_are_smoothed_over_one_percent_of_its_episodes(tmp_path):
    """charts/episodic_return of a run with 2,000 episodes: a running mean over 20 episodes (1%), not 10."""
    root = str(tmp_path / "runs")
    teacher(root, "Hopper-v4", 1, 1000.0)
    returns = [(100 * (i + 1), 1000.0 * (i % 20 == 0)) for i in range(2000)]  # one 1000 in every 20 episodes
    student(root, "Hopper-v4", 1, "ppd", "larger", 50.0, curves={"charts/episodic_return": returns})
    runs = report.load_runs(root, [])
    run = next(r for r in runs if r.method == "ppd")
    tag, steps, values = report.normalised_curve(run, report.Scorer(runs, report.Args().atari_scores, []), [])
    assert len(values) == 2000 - 20 + 1 and steps[0] == 2000
    assert values == pytest.approx(0.05)  # every 20-episode window holds exactly one 1000: 50 of the teacher's 1000


def multi_run(root, seed, method, fractions, fade=False):
    """A multi-teacher run (multi_teacher_procgen.py's eval.json): game -> (test, train) fraction of its teacher,
    whose scores are 5 (test) and 8 (train)."""
    games = {}
    for game, (test, train) in fractions.items():
        games[game] = {
            "teacher": {
                "sha256": teacher_hash(game, seed),
                "evaluation": evaluation(5.0, "test"),
                "evaluation_train_levels": evaluation(8.0, "train"),
                "corruption_sigma": 0.0,
            },
            "evaluation": evaluation(5.0 * test, "test"),
            "evaluation_train_levels": evaluation(8.0 * train, "train"),
            "fraction_of_teacher": test,
            "fraction_of_teacher_train_levels": train,
        }
    info = {
        "script": "multi_teacher_procgen.py",
        "method": method,
        "suite": "procgen",
        "env_id": "+".join(games),
        "env_ids": list(games),
        "seed": seed,
        "student_size": "same",
        "evaluation": None,
        "games": games,
        "lambda_fade": fade,
        "distill_lambda": 1.0 if method == "ppd" else None,
    }
    curves = {f"eval/episodic_return/{game}": [(100, 1.0), (200, 2.0)] for game in games}  # per-game curves
    write_run(root, f"multi__{method}{'_fade' * fade}__{seed}", info, curves)


def test_multi_teacher_students_get_their_own_table(tmp_path):
    """Issue #39: per game and over all games, each multi-teacher method's fraction of the game's teacher
    (geometric mean over seeds), test and training levels; PPD with --lambda-fade its own column; beside them the
    single-game same-size students of the same teacher files, and nothing of other teachers. Multi-teacher runs stay
    out of Table 1."""
    runs = str(tmp_path / "runs")
    teacher(runs, "coinrun", 1, 5.0, train_score=8.0)
    multi_run(runs, 1, "ppd", {"coinrun": (0.5, 1.0), "jumper": (0.8, 0.9)})
    multi_run(runs, 2, "ppd", {"coinrun": (0.8, 0.4), "jumper": (0.2, 0.1)})
    multi_run(runs, 1, "ppd", {"coinrun": (0.9, 1.0), "jumper": (0.9, 1.0)}, fade=True)
    multi_run(runs, 1, "ppo", {"coinrun": (0.1, 0.2), "jumper": (0.4, 0.5)})
    student(runs, "coinrun", 1, "student_distill", "same", 4.0, train_score=6.0)  # 0.8 and 0.75 of teacher 1
    student(runs, "coinrun", 1, "ppd", "smaller", 1.0, train_score=1.0)  # another size: not a "single" cell
    extracted = str(tmp_path / "extracted")
    text = report.report(
        report.Args(runs_dir=runs, out_dir=str(tmp_path / "out"), extract_to=extracted, bootstrap_reps=100)
    )
    with open(os.path.join(extracted, "multi__ppo__1", "curves.csv")) as f:  # copied with its per-game curves
        assert {row["tag"] for row in csv.DictReader(f)} == {
            "eval/episodic_return/coinrun",
            "eval/episodic_return/jumper",
        }
    header, *rows = table_rows(text, "Multi-teacher students")
    assert header == ["game (levels)", "multi ppd", "multi ppd-fade", "multi ppo", "single sd"]
    cells = {row[0]: dict(zip(header[1:], row[1:])) for row in rows}
    assert cells["coinrun (test)"]["multi ppd"] == f"{np.sqrt(0.5 * 0.8):.2f} (2)"
    assert cells["jumper (train)"]["multi ppd"] == f"{np.sqrt(0.9 * 0.1):.2f} (2)"
    assert cells["all games (test)"]["multi ppd"] == f"{(0.5 * 0.8 * 0.8 * 0.2) ** 0.25:.2f} (4)"
    assert (
        cells["all games (test)"]["multi ppd-fade"] == "0.90 (2)" and cells["coinrun (test)"]["multi ppo"] == "0.10 (1)"
    )
    assert cells["coinrun (test)"]["single sd"] == "0.80 (1)" and cells["coinrun (train)"]["single sd"] == "0.75 (1)"
    assert cells["jumper (test)"]["single sd"] == "–" and cells["all games (test)"]["single sd"] == "0.80 (1)†"
    rows = list(csv.DictReader(open(tmp_path / "out" / "table_multi.csv")))
    assert {(r["game"], r["levels"], r["column"]) for r in rows} >= {("all games", "train", "multi ppo")}
    assert "multi__ppd__1" not in text  # read, shown in their own table, not left out


def test_multi_teacher_comparisons_pool_the_games_with_intervals(tmp_path):
    """Issue #39's pooled comparisons: pairs of one game and seed, games as strata; the methods, the teachers
    (fraction 1), the single-game students of the same teacher files, and PPD's lead with one network against its
    lead with one network per game, by hand."""
    runs = str(tmp_path / "runs")
    multi = {
        ("ppd", 1): {"coinrun": (0.9, 1.0), "jumper": (0.8, 0.9)},
        ("ppd", 2): {"coinrun": (0.7, 0.6), "jumper": (1.0, 0.8)},
        ("student_distill", 1): {"coinrun": (0.6, 0.9), "jumper": (0.7, 0.5)},
        ("student_distill", 2): {"coinrun": (0.8, 0.8), "jumper": (0.9, 0.6)},
        ("ppo", 1): {"coinrun": (0.2, 0.3), "jumper": (0.4, 0.1)},
    }
    for (method, seed), fractions in multi.items():
        multi_run(runs, seed, method, fractions)
    single = {("ppd", 1): 0.9, ("ppd", 2): 1.0, ("student_distill", 1): 0.5, ("student_distill", 2): 0.6}
    for seed in (1, 2):
        teacher(runs, "coinrun", seed, 5.0, train_score=8.0)
    for (method, seed), fraction in single.items():
        student(runs, "coinrun", seed, method, "same", 5.0 * fraction, train_score=8.0 * fraction)
    # one run with noise: coinrun's test episodes 0.5 either side of 4.5, an SE of 0.5 (0.1 of the teacher's 5)
    path = os.path.join(runs, "multi__ppd__1", "eval.json")
    info = json.load(open(path))
    info["games"]["coinrun"]["evaluation"]["returns"] = [4.0, 5.0]
    json.dump(info, open(path, "w"))
    out = str(tmp_path / "out")
    text = report.report(report.Args(runs_dir=runs, out_dir=out, bootstrap_reps=200, poi_reps=20))
    with open(os.path.join(out, "comparisons.csv")) as f:
        rows = {(r["row"], r["a"], r["b"]): r for r in csv.DictReader(f) if r["table"] == "multi"}
    ppd_sd = rows[("procgen", "multi ppd", "multi sd")]  # +0.3, +0.1 (jumper), -0.1, +0.1 (coinrun)
    assert ppd_sd["pairs"] == "4" and float(ppd_sd["mean_diff"]) == pytest.approx(0.1)
    assert float(ppd_sd["diff_low"]) < 0.1 < float(ppd_sd["diff_high"]) and ppd_sd["p_improve"] != ""
    ppd_teacher = rows[("procgen", "multi ppd", "teacher")]  # fractions 0.9, 0.8, 0.7, 1.0 against 1
    assert float(ppd_teacher["mean_diff"]) == pytest.approx(-0.15)
    # the one noisy evaluation: noise sqrt(0.1 ** 2) / 4 pairs
    assert float(ppd_teacher["z_episodes"]) == pytest.approx(-0.15 / (0.1 / 4), rel=1e-5)
    ppo = rows[("procgen (train)", "multi ppd", "multi ppo")]  # seed 1 only: one pair per game, no interval
    assert ppo["pairs"] == "2" and float(ppo["mean_diff"]) == pytest.approx((0.7 + 0.8) / 2) and ppo["diff_low"] == ""
    # against the single-game students: coinrun only (jumper has none), its two seeds
    own = rows[("procgen", "multi ppd", "single ppd")]
    assert own["pairs"] == "2" and float(own["mean_diff"]) == pytest.approx(((0.9 - 0.9) + (0.7 - 1.0)) / 2)
    assert float(rows[("procgen (train)", "multi sd", "single sd")]["mean_diff"]) == pytest.approx((0.4 + 0.2) / 2)
    # PPD's lead over student-distill: multi +0.3 and -0.1, single +0.4 and +0.4 on coinrun
    lead = rows[("procgen", "multi (ppd − sd)", "single (ppd − sd)")]
    assert lead["pairs"] == "2" and float(lead["mean_diff"]) == pytest.approx(((0.3 - 0.4) + (-0.1 - 0.4)) / 2)
    assert ("procgen", "multi (ppd − td)", "single (ppd − td)") not in rows  # no teacher-distill runs
    assert "| multi-teacher | procgen | same | multi ppd − multi sd | 4 | +0.100 [" in text


def test_procgen_imperfect_teachers_onto_same_size_students(tmp_path):
    """Issue #38 part 3: corrupted Procgen teachers distilled onto same-size students get their own 'same' columns
    beside Mujoco's larger ones, on test levels and again on training levels (Table 8); every student also as a
    fraction of the corrupted teacher; and the comparisons pair them with the corrupted teacher."""
    root = str(tmp_path / "runs")
    teacher(root, "Hopper-v4", 1, 1000.0)
    student(root, "Hopper-v4", 1, "ppd", "larger", 800.0, sigma=0.05, teacher_score=400.0)
    for seed in (1, 2):
        teacher(root, "coinrun", seed, 8.0, train_score=10.0)
        for method, score in (("ppd", 6.0), ("student_distill", 4.0)):
            name = student(
                root, "coinrun", seed, method, "same", score, sigma=0.05, teacher_score=4.0, train_score=score + 1.0
            )
            path = os.path.join(root, name, "eval.json")
            info = json.load(open(path))
            info["teacher"]["evaluation_train_levels"] = evaluation(5.0, "train")  # the corrupted teacher's
            json.dump(info, open(path, "w"))
    text = report.report(report.Args(runs_dir=root, out_dir=str(tmp_path / "out"), bootstrap_reps=100))
    header, *rows = table_rows(text, "Tables 2, 6 and 8")
    assert header[3:] == ["same td", "same sd", "same ppd", "larger td", "larger sd", "larger ppd"]  # SIZES order
    table = {row[0]: dict(zip(header, row)) for row in rows}
    test, train = table["coinrun (σ=0.05)"], table["coinrun (σ=0.05, train)"]
    assert (test["corrupted teacher"], test["same ppd"], test["same sd"]) == ("0.50x", "0.75", "0.50")
    assert (train["corrupted teacher"], train["same ppd"], train["same sd"]) == ("0.50x", "0.70", "0.50")
    assert test["larger ppd"] == "–" and table["Hopper-v4 (σ=0.05)"]["larger ppd"] == "0.80"
    header, *rows = table_rows(text, "Table 2: the same students, fractions of the corrupted teacher")
    table = {row[0]: dict(zip(header, row)) for row in rows}
    assert table["coinrun (σ=0.05)"]["same ppd"] == "1.50" and table["coinrun (σ=0.05)"]["same sd"] == "1.00"
    assert (
        table["coinrun (σ=0.05, train)"]["same ppd"] == "1.40" and table["Hopper-v4 (σ=0.05)"]["larger ppd"] == "2.00"
    )
    with open(tmp_path / "out" / "comparisons.csv") as f:
        compared = list(csv.DictReader(f))
    pairs = {(r["table"], r["row"], r["size"], r["a"], r["b"]): r for r in compared}
    test, train = ("2", "coinrun (σ=0.05)", "same"), ("8", "coinrun (σ=0.05, train)", "same")
    assert float(pairs[(*test, "ppd", "corrupted teacher")]["mean_diff"]) == pytest.approx(0.25)  # 0.75 - 0.5
    assert float(pairs[(*test, "ppd", "sd")]["mean_diff"]) == pytest.approx(0.25)
    # Table 8: the same pairs on training levels (original 10, corrupted 5, PPD 7, SD 5)
    assert float(pairs[(*train, "ppd", "corrupted teacher")]["mean_diff"]) == pytest.approx(0.2)
    assert float(pairs[(*train, "sd", "corrupted teacher")]["mean_diff"]) == pytest.approx(0.0)
    assert float(pairs[(*train, "ppd", "sd")]["mean_diff"]) == pytest.approx(0.2)
    assert not any(key[0] == "8" and "Hopper" in key[1] for key in pairs)  # Mujoco has no training levels
