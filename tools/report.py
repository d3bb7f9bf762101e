"""Turn a folder of runs into the paper's tables and figures: Tables 1, 2 (with 6), 5 and 7, Figures 1 and 2.

    python tools/report.py --runs-dir runs --out-dir report
    python tools/report.py --runs-dir runs/grid/runs --extract-to results/runs --out-dir results/report

Every runs/{run}/eval.json is read (the scripts write it last, so a run without one is unfinished), and for
the figures the run's curves: its tensorboard events, or the curves.csv that --extract-to writes beside a
copy of eval.json (a compact form to commit). Outputs in --out-dir: report.md (all tables, the IQM tables
and the list of what was left out), table*.csv (long format, one row per cell) and figure*.png.

Scores and fractions (paper section 3):
- A run's score is the mean return of its final evaluation; Atari scores are human-normalised,
  (score - random) / (human - random), with the scores of --atari-scores; Procgen's is on test levels, and
  on training levels in Table 7.
- A student's fraction is its score divided by the score of its own teacher: the teacher whose checkpoint
  file has the sha256 that the student's eval.json records (teacher.sha256). Its score is read from the
  eval.json of a teacher run in --runs-dir (its checkpoint_sha256, the teacher file's, or the hash of the
  run's own checkpoint.pt beside it), or from the .json beside a teacher file (in --teachers-dirs, or beside
  the student's teacher.path), with checkpoint_sha256. A student whose teacher is not found is
  left out and named, never divided by another teacher of the same env and seed. Imperfect-teacher runs
  (Table 2) are divided by the original, uncorrupted teacher, as is the corrupted teacher's own score (from
  the student's eval.json).
- Geometric means are undefined for non-positive numbers. Rule: a pair whose teacher score is <= 0 is left
  out (reported by name), and a student fraction <= --min-fraction is raised to --min-fraction (0.01: a
  student at or below zero counts as 1% of its teacher); cells with raised values carry a '*'.
- Beside each geometric mean: the interquartile mean (IQM) of the same fractions with a 95% percentile
  confidence interval from a stratified bootstrap (runs resampled with replacement within each env), computed
  by rliable (Agarwal et al. 2021).
- Comparisons (comparisons.csv, the docs' rule for "above"): per cell, each pair of methods' paired
  difference of fractions (runs paired by their teacher: same env and seed) with a stratified-bootstrap 95%
  interval, and rliable's probability of improvement P(A's run > B's run) with its interval; for the
  multi-teacher runs (table "multi"), pooled over the games: the methods, multi-task PPO, the teachers, the
  single-game students of the same teachers, and PPD's lead with one network against its lead per game. Per run
  (runs.csv): its score and the standard error of its evaluation episodes, against its teacher's (and, for an
  imperfect teacher, the corrupted teacher's) in standard errors of the difference.
- Every number in the CSVs has 6 significant digits: a report is byte-equal across CPUs and numpy builds.
- Figures plot each method's mean curve over runs with a shaded band: a 95% bootstrap interval of the mean
  (runs resampled, fixed seed) for curves of 5 runs or more, else min-max over the runs (curve_band). A run's
  curve is its --eval-every evaluation where it has one (teacher-distill's own trajectories), else the returns
  collected during distillation; `--curve-tags charts/episodic_return` draws the latter for every run, the
  paper's Figure 1 (Procgen: training levels, divided by the teacher's training-level score).
"""

import csv
import io
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated, Optional

import numpy as np
import tyro
from rliable import library as rly_library
from rliable import metrics as rly_metrics
from entry import SCRIPTS, UsageError, plural, run_main, sha256_of, write_json, write_text  # noqa: E402  (tools/ is sys.path[0] when a tool runs)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = {"teacher_distill": "td", "student_distill": "sd", "ppd": "ppd"}  # the paper's column order
# Variants beyond the paper: their own columns, after the paper's, only when a run of theirs is present.
VARIANTS = {"ppd_stopgrad": "ppd-sg"}  # ppd_*.py --distill-ratio stopgrad (r's gradient stopped in the KL term)
ALL_METHODS = {**METHODS, **VARIANTS}
TEACHER_METHODS = ("ppo", "a2c")  # teacher scripts' runs, and teachers imported from SB3 (tools/import_sb3.py)
SIZES = ("smaller", "same", "larger")
SUITES = ("atari", "mujoco", "procgen")
CURVE_TAGS = ("eval/episodic_return", "charts/episodic_return")  # preferred first: the honest curve of TD
CURVES_FILE = "curves.csv"


@dataclass
class Args:
    runs_dir: str = "runs"
    """folder of run folders, each with its eval.json (and tensorboard events or curves.csv)"""
    out_dir: str = "report"
    """where report.md, the CSV tables and the PNG figures are written"""
    extract_to: Annotated[
        Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: none: no copy)")
    ] = None
    """also copy each finished run's eval.json and its curves (as curves.csv) to this folder"""
    extract_only: bool = False
    """with --extract-to: copy the runs and write no report"""
    teachers_dirs: tuple[str, ...] = ("teachers",)
    """folders of teacher files whose .json (with checkpoint_sha256) can score a student's teacher, besides the
    teacher runs in --runs-dir"""
    atari_scores: str = os.path.join(ROOT, "tools", "atari_human_random_scores.csv")
    """CSV of random and human Atari scores (columns game, random, human; Badia et al. 2020's values)"""
    min_fraction: float = 0.01
    """fractions of teacher at or below this are raised to it before a geometric mean (see the module doc)"""
    bootstrap_reps: int = 2000
    """stratified-bootstrap resamples for the IQM confidence intervals"""
    poi_reps: int = 200
    """bootstrap resamples for the intervals of the probability of improvement (suite rows of the comparisons;
    rliable's Mann-Whitney per env costs ~9 ms a resample)"""
    seed: int = 0
    """seed of the bootstrap"""
    curve_tags: tuple[str, ...] = CURVE_TAGS
    """the curve the figures draw for a run, the first it has: eval/episodic_return is the --eval-every
    evaluation (Procgen: test levels), charts/episodic_return the returns collected during distillation (Procgen:
    training levels, as the paper's Figures 1 and 6-8; teacher-distill's are the teacher's own episodes)"""


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def geometric_mean(values, floor: float) -> tuple[float, int]:
    """Geometric mean after raising values <= floor to floor; returns (mean, how many were raised)."""
    values = np.asarray(values, np.float64)
    raised = int(np.sum(values <= floor))
    return float(np.exp(np.mean(np.log(np.maximum(values, floor))))), raised


def iqm(values) -> float:
    """Interquartile mean (rliable's aggregate_iqm: scipy's trim_mean(x, 0.25), int(n/4) values cut from each end)."""
    return float(rly_metrics.aggregate_iqm(np.asarray(values, np.float64).ravel()))


def rliable_estimate(arrays: list, statistic, reps: int, size: float, seed: int) -> tuple[float, float, float]:
    """(point, low, high): statistic of arrays and its percentile interval from rliable's stratified bootstrap,
    which redraws each array's rows (one stratum: an env's runs) with replacement, keeping every count."""
    state = np.random.get_state()
    np.random.seed(seed)  # rliable 1.2.0 resamples with numpy's global generator (it ignores random_state)
    try:
        point, interval = rly_library.get_interval_estimates(
            {"x": arrays}, lambda *xs: np.array([statistic(*xs)]), reps=reps, confidence_interval_size=size
        )
    finally:
        np.random.set_state(state)
    return float(point["x"][0]), float(interval["x"][0][0]), float(interval["x"][1][0])


def stratified_bootstrap_ci(
    groups: list, statistic=iqm, reps: int = 2000, size: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of statistic (of all values pooled) over resamples that redraw each group's values
    (an env's seeds) with replacement, keeping every group's count: rliable's stratified bootstrap."""
    columns = [np.asarray(g, np.float64).reshape(-1, 1) for g in groups if len(g)]
    _, low, high = rliable_estimate(columns, lambda *xs: statistic(np.concatenate(xs)), reps, size, seed)
    return low, high


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, size: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """rliable's P(X > Y) (runs x envs matrices: the Mann-Whitney probability per env, averaged over envs) with
    its stratified-bootstrap interval (X and Y resampled independently within each env)."""
    return rliable_estimate(
        [np.asarray(x, np.float64), np.asarray(y, np.float64)], rly_metrics.probability_of_improvement, reps, size, seed
    )


def standard_error(returns) -> float:
    """Of an evaluation's mean return: the sample standard deviation of its episodes over sqrt(episodes)."""
    returns = np.asarray(returns, np.float64)
    return float(np.std(returns, ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else float("nan")


def reading(low: Optional[float], high: Optional[float], z: float) -> str:
    """docs/results.md's rule for a difference: "above" / "below" only when its interval over seeds excludes zero
    (if it has one: two pairs or more) and it is at least 2 standard errors of the evaluations' own noise (z);
    otherwise "level within noise"."""
    if np.isnan(z) or abs(z) < 2 or (low is not None and low <= 0 <= high):
        return "level within noise"
    return "above" if z > 0 else "below"


def fixed(value) -> str:
    """A number as the CSVs write it: 6 significant digits, so a report is byte-equal on every CPU and numpy
    build (vectorised log / exp differ in the last bits between AVX2 and AVX-512)."""
    if isinstance(value, (bool, np.bool_, str)) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return "nan" if np.isnan(value) else f"{value:.6g}"


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    name: str
    path: str
    info: dict

    @property
    def suite(self) -> str:
        return self.info["suite"]

    @property
    def env_id(self) -> str:
        return self.info["env_id"]

    @property
    def script(self) -> str:
        return self.info.get("script", "")

    @property
    def is_copy(self) -> bool:
        """A student of a copied script (a file name none of the project's scripts has): whatever it changed,
        its runs are never averaged with the original's."""
        return bool(self.script) and self.script not in SCRIPTS and self.info["method"] not in TEACHER_METHODS

    @property
    def method(self) -> str:
        """The method, with a variant's own name: it is never averaged with Eq. 2's runs; a copied script's runs
        are its own method, named by its file (my_ppd_mujoco.py's: my_ppd_mujoco)."""
        if self.is_copy:
            return self.script[: -len(".py")] if self.script.endswith(".py") else self.script
        if self.info["method"] == "ppd" and self.info.get("distill_ratio", "eq2") != "eq2":
            return f"ppd_{self.info['distill_ratio']}"
        return self.info["method"]

    @property
    def size(self) -> str:
        return self.info.get("student_size") or "same"

    @property
    def sigma(self) -> float:
        return float((self.info.get("teacher") or {}).get("corruption_sigma") or 0.0)

    @property
    def lam(self) -> Optional[float]:
        return self.info.get("distill_lambda")

    @property
    def teacher_sha256(self) -> Optional[str]:
        """The sha256 of the teacher checkpoint file the student distilled (None for teachers and old runs)."""
        return (self.info.get("teacher") or {}).get("sha256")

    @property
    def is_student(self) -> bool:
        """A run of one of the report's distillation methods: the paper's, a variant, or a copied script."""
        return self.method in ALL_METHODS or self.is_copy

    @property
    def is_main_grid(self) -> bool:
        """Table 1's runs: an uncorrupted teacher, lambda 1 (SD/TD have no lambda) and the forward KL of Eq. 2."""
        return (
            self.is_student
            and self.sigma == 0
            and self.lam in (None, 1.0)
            and self.info.get("kl_direction", "forward") == "forward"
        )


def load_runs(runs_dir: str, problems: list) -> list:
    if not os.path.isdir(runs_dir):
        raise UsageError(f"runs folder '{runs_dir}' does not exist")
    runs = []
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name)
        if not os.path.isdir(path):
            continue
        eval_path = os.path.join(path, "eval.json")
        if not os.path.isfile(eval_path):
            problems.append(f"{name}: no eval.json (unfinished run); left out")
            continue
        try:
            with open(eval_path) as f:
                info = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            problems.append(f"{name}: unreadable eval.json ({e}); left out")
            continue
        if not info.get("evaluation") and not info.get("games"):  # games: a multi-teacher run's per-game records
            problems.append(f"{name}: eval.json has no final evaluation; left out")
            continue
        runs.append(Run(name, path, info))
    if not runs:
        raise UsageError(f"no finished runs (folders with eval.json) in '{runs_dir}'")
    return runs


class Scorer:
    """Scores (human-normalised on Atari) and the teacher each student is measured against."""

    def __init__(self, runs: list, atari_scores: str, problems: list, teachers_dirs=()):
        self.problems = problems
        self.atari = {}
        if any(r.suite == "atari" for r in runs):
            if not os.path.isfile(atari_scores):
                raise UsageError(f"Atari random/human scores '{atari_scores}' not found (--atari-scores)")
            with open(atari_scores) as f:
                rows = csv.DictReader(line for line in f if not line.startswith("#"))
                self.atari = {r["game"]: (float(r["random"]), float(r["human"])) for r in rows}
        # sha256 of a teacher checkpoint -> its evaluations: teacher runs, then the .json beside teacher files.
        # A teacher run writes two files of its final policy, {teachers_dir}/{env}__{seed}.pt (the hash in its
        # eval.json) and its run folder's checkpoint.pt (with the optimiser, so another hash): a student may
        # have loaded either.
        self.teachers = defaultdict(list)
        self.aliases = {}  # sha256 of a teacher run's checkpoint.pt -> the checkpoint_sha256 of its eval.json
        for run in runs:
            if run.method in TEACHER_METHODS and run.info.get("checkpoint_sha256"):
                self.teachers[run.info["checkpoint_sha256"]].append(run)
                checkpoint = os.path.join(run.path, "checkpoint.pt")
                if os.path.isfile(checkpoint):
                    self.aliases[sha256_of(checkpoint)] = run.info["checkpoint_sha256"]
        beside = [(r.info.get("teacher") or {}).get("path") for r in runs if r.method not in TEACHER_METHODS]
        candidates = [os.path.join(d, n) for d in teachers_dirs if os.path.isdir(d) for n in sorted(os.listdir(d))]
        candidates += [p[:-3] + ".json" for p in beside if p and p.endswith(".pt")]
        seen = {os.path.abspath(r.path) for rs in self.teachers.values() for r in rs}
        for path in dict.fromkeys(os.path.abspath(p) for p in candidates if p.endswith(".json")):
            if path in seen or not os.path.isfile(path):
                continue
            try:
                with open(path) as f:
                    info = json.load(f)
            except (OSError, json.JSONDecodeError):
                continue
            if (
                isinstance(info, dict)
                and info.get("method") in TEACHER_METHODS
                and info.get("checkpoint_sha256")
                and info.get("evaluation")
            ):
                self.teachers[info["checkpoint_sha256"]].append(Run(os.path.basename(path), path, info))
                seen.add(path)

    def teacher_id(self, run: Run) -> Optional[str]:
        """The student's teacher, one name for both files of a teacher run: the hash its eval.json records."""
        return self.aliases.get(run.teacher_sha256, run.teacher_sha256)

    def normalise(self, suite: str, env_id: str, raw: float) -> Optional[float]:
        if suite != "atari":
            return raw
        game = env_id.split("-v")[0]
        if game not in self.atari:
            return None
        random_score, human_score = self.atari[game]
        return (raw - random_score) / (human_score - random_score)

    def score(self, run: Run, train_levels: bool = False, evaluation: Optional[dict] = None) -> Optional[float]:
        if evaluation is None:
            evaluation = run.info.get("evaluation_train_levels") if train_levels else run.info["evaluation"]
        if not evaluation:
            return None
        return self.normalise(run.suite, run.env_id, float(evaluation["mean"]))

    def score_se(self, run: Run, train_levels: bool = False, evaluation: Optional[dict] = None) -> float:
        """The standard error of score() from the evaluation's episodes (human-normalised units on Atari)."""
        if evaluation is None:
            evaluation = run.info.get("evaluation_train_levels") if train_levels else run.info["evaluation"]
        se = standard_error((evaluation or {}).get("returns", []))
        scale = self.normalise(run.suite, run.env_id, 1.0) - self.normalise(run.suite, run.env_id, 0.0)
        return se * abs(scale)

    def teacher_score(self, run: Run, train_levels: bool = False) -> Optional[float]:
        """The mean score of the student's own (uncorrupted) teacher, found by the sha256 of its checkpoint file;
        None (and a note) if it is not found."""
        if not run.teacher_sha256:
            self.note(f"{run.name}: its eval.json does not name its teacher by sha256 (teacher.sha256); left out")
            return None
        teachers = self.teachers.get(self.teacher_id(run), [])
        scores = [s for s in (self.score(t, train_levels) for t in teachers) if s is not None]
        if not scores:
            path = (run.info.get("teacher") or {}).get("path")
            self.note(
                f"{run.name}: no evaluation of its teacher ({path}, sha256 {run.teacher_sha256[:12]}) among "
                f"the teacher runs or teacher .json files; left out"
            )
            return None
        if np.mean(scores) <= 0:
            self.note(f"{run.name}: its teacher's score {np.mean(scores):.3g} <= 0, a fraction is undefined; left out")
            return None
        return float(np.mean(scores))

    def teacher_evaluation(self, run: Run) -> Optional[dict]:
        """The final (test-level) evaluation of the student's own teacher, from its first record."""
        for teacher in self.teachers.get(self.teacher_id(run), []) if run.teacher_sha256 else []:
            if teacher.info.get("evaluation"):
                return teacher.info["evaluation"]
        return None

    def fraction(self, run: Run, train_levels: bool = False) -> Optional[float]:
        student, teacher = self.score(run, train_levels), self.teacher_score(run, train_levels)
        if student is None:
            self.note(f"{run.name}: no {'training-level ' if train_levels else ''}score; left out")
        return None if student is None or teacher is None else student / teacher

    def note(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def cell_stats(groups: dict, args: Args) -> dict:
    """groups: env -> fractions of its seeds. Geometric mean (with the raised count), IQM and its CI."""
    values = [v for vs in groups.values() for v in vs]
    if not values:
        return {}
    gm, raised = geometric_mean(values, args.min_fraction)
    low, high = stratified_bootstrap_ci(list(groups.values()), iqm, args.bootstrap_reps, seed=args.seed)
    return {"n": len(values), "geomean": gm, "raised": raised, "iqm": iqm(values), "ci_low": low, "ci_high": high}


def fmt_gm(stats: dict, suffix: str = "") -> str:
    return f"{stats['geomean']:.2f}{suffix}{'*' if stats['raised'] else ''}" if stats else "–"


def fmt_iqm(stats: dict) -> str:
    return f"{stats['iqm']:.2f} [{stats['ci_low']:.2f}, {stats['ci_high']:.2f}]" if stats else "–"


def markdown_table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def csv_text(header: list, rows: list) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def stats_row(key: list, stats: dict) -> list:
    return key + [fixed(stats[k]) if k in stats else "" for k in STATS_HEADER]


STATS_HEADER = ["n", "geomean", "raised", "iqm", "ci_low", "ci_high"]
PARTIAL_MARK = "†"


def methods_of(runs: list) -> dict:
    """The columns: the paper's three methods, then each variant that has a run, then each copied script's."""
    present = {r.method for r in runs}
    copies = sorted({r.method for r in runs if r.is_copy})
    return {**METHODS, **{m: short for m, short in VARIANTS.items() if m in present}, **{m: m for m in copies}}


def not_shown(run: Run) -> Optional[str]:
    """Why no table or figure shows a run that the report read (None when one does): the tables' own filters."""
    if run.method in TEACHER_METHODS or run.sigma != 0:  # teachers score students; Table 2 names its own
        return None
    if not run.is_student:
        return (
            f"method '{run.info['method']}' of {run.script or 'an unnamed script'} is none of the report's "
            f"({', '.join(ALL_METHODS)})"
        )
    if run.info.get("kl_direction", "forward") != "forward":
        return f"--kl-direction {run.info['kl_direction']}: no table or figure shows the reverse KL"
    if run.lam not in (None, 1.0) and not (run.method == "ppd" and run.size == "larger"):
        return (
            f"lambda {run.lam:g} ({run.method}, {run.size} student): only PPD onto larger students' lambda "
            f"sweep is drawn (Figure 2)"
        )
    return None


def grid_header(methods: dict) -> list:
    return [f"{size} {short}" for size in SIZES for short in methods.values()]


def fraction_table(
    runs: list, scorer: Scorer, args: Args, row_of, methods: dict, train_levels: bool = False, with_all: bool = True
):
    """Geometric-mean fractions per row (row_of(run) -> label) and per size x method, with an 'all' row.
    Returns (rows of the geometric means, rows of the IQMs, csv rows)."""
    cells = defaultdict(lambda: defaultdict(list))  # (row, size, method) -> env -> fractions
    teacher_scores = defaultdict(dict)  # row -> (env, seed) -> teacher score
    suite_of = {}  # env -> suite
    for run in runs:
        if not run.is_main_grid:
            continue
        fraction = scorer.fraction(run, train_levels)
        if fraction is None:
            continue
        row = row_of(run)
        for label in (row, "all"):
            cells[(label, run.size, run.method)][run.env_id].append(fraction)
        teacher_scores[row][(run.env_id, scorer.teacher_id(run))] = scorer.teacher_score(run, train_levels)
        suite_of[run.env_id] = run.suite
    rows = sorted(teacher_scores) + (["all"] if with_all and teacher_scores else [])
    gm_rows, iqm_rows, csv_rows = [], [], []
    for row in rows:
        per_env = defaultdict(list)
        for (env, _), score in teacher_scores.get(row, {}).items():
            per_env[env].append(score)
        # one env's teacher, or Atari's human-normalised teachers; raw scores of several envs do not average
        comparable = len(per_env) == 1 or all(suite_of[env] == "atari" for env in per_env)
        teacher = (
            f"{np.mean([np.mean(v) for v in per_env.values()]):.2f}"
            if per_env and comparable
            else ("–" if per_env else "")
        )
        stats = {(size, method): cell_stats(cells[(row, size, method)], args) for size in SIZES for method in methods}
        # a cell over fewer envs than its row has (a grid in progress, a variant run on some envs) is marked
        row_envs = set().union(*(cells[(row, s, m)].keys() for s in SIZES for m in methods))
        short = {key: PARTIAL_MARK if stats[key] and set(cells[(row, *key)]) != row_envs else "" for key in stats}
        gm_rows.append([row, teacher] + [fmt_gm(stats[(s, m)]) + short[(s, m)] for s in SIZES for m in methods])
        iqm_rows.append([row] + [fmt_iqm(stats[(s, m)]) + short[(s, m)] for s in SIZES for m in methods])
        csv_rows += [
            stats_row([row, teacher, s, methods[m]], stats[(s, m)]) for s in SIZES for m in methods if stats[(s, m)]
        ]
    return gm_rows, iqm_rows, csv_rows


def table1(runs, scorer, args):
    methods = methods_of(runs)
    gm_rows, iqm_rows, csv_rows = fraction_table(runs, scorer, args, lambda r: r.suite, methods)
    return (
        markdown_table(["env", "teacher score"] + grid_header(methods), gm_rows),
        markdown_table(["env"] + grid_header(methods), iqm_rows),
        csv_rows,
    )


def table7(runs, scorer, args):
    """Procgen: training levels against test levels (each against the teacher on the same levels)."""
    procgen = [r for r in runs if r.suite == "procgen"]
    methods = methods_of(procgen)
    train = fraction_table(
        procgen, scorer, args, lambda r: "procgen (train)", methods, train_levels=True, with_all=False
    )
    test = fraction_table(procgen, scorer, args, lambda r: "procgen (test)", methods, with_all=False)
    return markdown_table(["levels", "teacher score"] + grid_header(methods), train[0] + test[0]), train[2] + test[2]


# Procgen's pace table (issue #38, beside Figure 1): the student's own play at these steps, each point the mean of
# its --eval-every evaluations (test levels) in the PACE_WINDOW steps up to it, which evens out their few episodes
PACE_STEPS = (300_000, 500_000, 1_000_000, 2_000_000)
PACE_WINDOW = 300_000


def table_pace(runs: list, scorer: Scorer):
    """Procgen, per game, size and method: the students' own play during distillation (eval/episodic_return, test
    levels) as a fraction of the teacher's test-level score at PACE_STEPS, the mean over seeds; n: runs. (Teacher-
    distill's training returns are the teacher's play, so its evaluations are the only curve of its student.)"""
    procgen = [r for r in runs if r.suite == "procgen" and r.is_main_grid]
    methods = methods_of(procgen)
    cells = defaultdict(list)  # (game, size, method) -> per run, the fraction at each of PACE_STEPS
    for run in procgen:
        curve, teacher = read_curves(run.path).get("eval/episodic_return"), scorer.teacher_score(run)
        if curve is None or not teacher:
            continue
        steps, values = curve
        windows = [values[(steps > at - PACE_WINDOW) & (steps <= at)] for at in PACE_STEPS]
        cells[(run.env_id, run.size, run.method)].append([w.mean() / teacher if len(w) else np.nan for w in windows])
    order = {key: i for i, key in enumerate([*SIZES, *methods])}
    rows = []
    for game, size, method in sorted(cells, key=lambda k: (k[0], order[k[1]], order[k[2]])):
        per_run = np.array(cells[(game, size, method)])
        seen = [column[np.isfinite(column)] for column in per_run.T]  # a run too short for a step count has none
        means = [f"{column.mean():.2f}" if len(column) else "–" for column in seen]
        rows.append([game, size, methods[method], str(len(per_run))] + means)
    header = ["game", "student", "method", "n"] + [f"at {at / 1e6:g}M" for at in PACE_STEPS]
    return header, rows


def table2(runs, scorer, args):
    """Imperfect teachers (Tables 2, 6 and 8): per env and per suite (Procgen on test levels, and again on training
    levels), the corrupted teacher and each method's student of each size, as fractions of the original teacher;
    and each student as a fraction of the corrupted teacher. Returns (both markdown tables, csv rows)."""
    cells = defaultdict(lambda: defaultdict(list))  # (row, column) -> env -> fractions of the original teacher
    of_corrupted = defaultdict(lambda: defaultdict(list))  # (row, column) -> env -> fractions of the corrupted one
    corrupted = defaultdict(dict)  # row -> (env, seed) -> the corrupted teacher's fraction (same for every method)
    originals = defaultdict(dict)  # row -> (env, seed) -> original teacher score
    suite_of = {}  # env -> suite
    imperfect = [r for r in runs if r.sigma != 0]
    methods = methods_of(imperfect)
    sizes = [size for size in SIZES if any(r.size == size for r in imperfect)]
    for run in imperfect:
        if run.method not in methods:
            continue
        teacher = run.info.get("teacher") or {}
        level_sets = [("", False)] + ([(", train", True)] if run.suite == "procgen" else [])
        for tag, train_levels in level_sets:
            original, student = scorer.teacher_score(run, train_levels), scorer.score(run, train_levels)
            if original is None or student is None:
                continue
            corrupted_eval = teacher.get("evaluation_train_levels" if train_levels else "evaluation")
            corrupted_score = scorer.score(run, evaluation=corrupted_eval) if corrupted_eval else None
            column = f"{run.size} {methods[run.method]}"
            for row in (f"{run.env_id} (σ={run.sigma:g}{tag})", f"{run.suite} (σ={run.sigma:g}{tag})"):
                cells[(row, column)][run.env_id].append(student / original)
                originals[row][(run.env_id, scorer.teacher_id(run))] = original
                suite_of[run.env_id] = run.suite
                if corrupted_score is not None:
                    corrupted[row][(run.env_id, scorer.teacher_id(run))] = corrupted_score / original
                    if corrupted_score > 0:
                        of_corrupted[(row, column)][run.env_id].append(student / corrupted_score)
    for row, values in corrupted.items():
        for (env, _), fraction in values.items():
            cells[(row, "corrupted")][env].append(fraction)
    rows = sorted(originals, key=lambda row: (row.split(" ")[0] in SUITES, row))  # envs first, then suites
    students = [f"{size} {short}" for size in sizes for short in methods.values()]
    md, md_corrupted, csv_rows = [], [], []
    for row in rows:
        stats = {column: cell_stats(cells[(row, column)], args) for column in ["corrupted"] + students}
        envs = {env for env, _ in originals[row]}  # raw scores of several envs do not average (as in Table 1)
        original = (
            f"{np.mean(list(originals[row].values())):.2f}"
            if len(envs) == 1 or all(suite_of[env] == "atari" for env in envs)
            else "–"
        )
        row_envs = set().union(*(cells[(row, c)].keys() for c in stats))
        mark = {c: PARTIAL_MARK if stats[c] and set(cells[(row, c)]) != row_envs else "" for c in stats}
        md.append([row, original] + [fmt_gm(stats[c], "x" if c == "corrupted" else "") + mark[c] for c in stats])
        csv_rows += [stats_row([row, original, c], stats[c]) for c in stats if stats[c]]
        stats = {column: cell_stats(of_corrupted[(row, column)], args) for column in students}
        md_corrupted.append([row] + [fmt_gm(stats[c]) for c in students])
        csv_rows += [stats_row([row, "of corrupted", c], stats[c]) for c in students if stats[c]]
    if not md:
        return None, None, csv_rows
    header = ["env", "original teacher score", "corrupted teacher"] + students
    return markdown_table(header, md), markdown_table(["env"] + students, md_corrupted), csv_rows


# the multi-teacher script's methods (multi_teacher_procgen.py, issue #39), in the paper's order, then its own
MULTI_METHODS = {"teacher_distill": "td", "student_distill": "sd", "ppd": "ppd", "ppd_fade": "ppd-fade", "ppo": "ppo"}


def multi_method(run: Run) -> str:
    """A multi-teacher run's method; PPD with --lambda-fade is its own column."""
    method = run.info["method"]
    return "ppd_fade" if method == "ppd" and run.info.get("lambda_fade") else method


def table_multi(multi_runs: list, runs: list, scorer: Scorer, args: Args):
    """One student for several games (multi_teacher_procgen.py): per game and pooled over the games, its fraction of
    that game's teacher (test and training levels), per method; beside them ("single") the single-game same-size
    students of the same teacher files (Table 1's runs), at the same steps per game."""
    cells = defaultdict(dict)  # (levels, column) -> game -> fractions over seeds
    paired = multi_paired_cells(multi_runs, runs, scorer)
    for levels, tag in (("test", ""), ("train", " (train)")):
        for column, games in paired[("multi", "procgen" + tag, "same")].items():
            cells[(levels, column)] = {game: [f for f, _ in by_teacher.values()] for game, by_teacher in games.items()}
    order = [f"multi {short}" for short in MULTI_METHODS.values()] + [f"single {s}" for s in ALL_METHODS.values()]
    columns = [c for c in order if any(column == c for _, column in cells)]
    games = sorted({game for groups in cells.values() for game in groups})
    md, csv_rows = [], []
    for levels in ("test", "train"):
        for row in games + ["all games"]:
            stats = {}
            for column in columns:
                groups = cells[(levels, column)]
                stats[column] = cell_stats(
                    groups if row == "all games" else {row: groups[row]} if row in groups else {}, args
                )
            # an 'all games' cell that lacks some of the games does not compare with the full ones
            mark = {
                c: PARTIAL_MARK if row == "all games" and len(cells[(levels, c)]) < len(games) else "" for c in columns
            }
            md.append(
                [f"{row} ({levels})"]
                + [fmt_gm(stats[c]) + (f" ({stats[c]['n']}){mark[c]}" if stats[c] else "") for c in columns]
            )
            csv_rows += [stats_row([row, levels, c], stats[c]) for c in columns if stats[c]]
    return markdown_table(["game (levels)"] + columns, md), csv_rows


def table5(runs, scorer):
    """Per env: the teacher's score and each method x size, averaged over seeds (human-normalised on Atari)."""
    sections = []
    methods = methods_of([r for r in runs if r.is_main_grid])
    for suite in SUITES:
        level_sets = [("procgen-train", True), ("procgen-test", False)] if suite == "procgen" else [(suite, False)]
        for section, train_levels in level_sets:
            rows = []
            for env in sorted({r.env_id for r in runs if r.suite == suite and r.is_main_grid}):
                students = [
                    r
                    for r in runs
                    if r.env_id == env and r.is_main_grid and scorer.teacher_score(r, train_levels) is not None
                ]
                # one score per teacher file, however many records (its run, its .json) evaluate it
                one_student_per_teacher = {scorer.teacher_id(r): r for r in students}.values()
                teacher = [scorer.teacher_score(r, train_levels) for r in one_student_per_teacher]
                cells = []
                for size in SIZES:
                    for method in methods:
                        scores = [
                            s
                            for r in students
                            if r.size == size and r.method == method
                            if (s := scorer.score(r, train_levels)) is not None
                        ]
                        cells.append(f"{np.mean(scores):.2f}" if scores else "–")
                rows.append([env, f"{np.mean(teacher):.2f}" if teacher else "–"] + cells)
            if rows:
                sections.append((section, rows))
    if not sections:
        return None, []
    header = ["env", "teacher score"] + grid_header(methods)
    md_rows = [row for section, rows in sections for row in [[f"**{section}**"] + [""] * (len(header) - 1)] + rows]
    csv_rows = [[section] + row for section, rows in sections for row in rows]
    return markdown_table(header, md_rows), csv_rows


# ---------------------------------------------------------------------------------------------
# Comparisons: the uncertainty of every claim the docs make
# ---------------------------------------------------------------------------------------------
# (A, B): A's fraction minus B's; "corrupted" is the imperfect teacher itself (Table 2 rows only)
PAIRS = (
    ("ppd", "student_distill"),
    ("ppd", "teacher_distill"),
    ("student_distill", "teacher_distill"),
    ("ppd_stopgrad", "ppd"),
    ("ppd", "corrupted"),
    ("student_distill", "corrupted"),
    ("teacher_distill", "corrupted"),
)
# the multi-teacher runs' pairs (issue #39): the methods between themselves and against multi-task PPO, PPD with
# --lambda-fade against constant λ, each method against its teachers and against the single-game students of the
# same teachers, and whether PPD's lead over a baseline changes when one network holds every game
MULTI_PAIRS = (
    ("multi ppd", "multi sd"),
    ("multi ppd", "multi td"),
    ("multi sd", "multi td"),
    ("multi ppd", "multi ppo"),
    ("multi sd", "multi ppo"),
    ("multi td", "multi ppo"),
    ("multi ppd-fade", "multi ppd"),
    ("multi ppd", "teacher"),
    ("multi sd", "teacher"),
    ("multi td", "teacher"),
    ("multi ppo", "teacher"),
    ("multi ppd", "single ppd"),
    ("multi sd", "single sd"),
    ("multi td", "single td"),
    ("multi (ppd − sd)", "single (ppd − sd)"),
    ("multi (ppd − td)", "single (ppd − td)"),
)
SHORT = {**ALL_METHODS, "corrupted": "corrupted teacher"}
TABLE_LABELS = {"multi": "multi-teacher"}  # the other tables are the paper's numbers
COMPARISON_HEADER = [
    "table",
    "row",
    "size",
    "a",
    "b",
    "pairs",
    "mean_diff",
    "diff_low",
    "diff_high",
    "p_improve",
    "p_low",
    "p_high",
    "z_episodes",
    "reading",
]


def paired_cells(runs: list, scorer: Scorer) -> dict:
    """(table, row, size) -> method -> env -> {teacher: fraction}: Table 1's grid per suite and per env (and
    Procgen's training levels, Table 7), Table 2's imperfect-teacher runs with their corrupted teachers (and
    Procgen's training levels, Table 8)."""
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for run in runs:
        if run.is_main_grid:
            level_sets = [("1", False)] + ([("7", True)] if run.suite == "procgen" else [])
            for table, train_levels in level_sets:
                fraction = scorer.fraction(run, train_levels)
                if fraction is None:
                    continue
                tag = " (train)" if train_levels else ""
                for row in (run.suite + tag, run.env_id + tag):
                    se = scorer.score_se(run, train_levels) / scorer.teacher_score(run, train_levels)
                    cells[(table, row, run.size)][run.method][run.env_id][scorer.teacher_id(run)] = (fraction, se)
        elif run.sigma != 0 and run.is_student:
            # Table 2 on Procgen's test levels (the other suites' only evaluation), Table 8 on its training levels
            level_sets = [("2", "", False)] + ([("8", ", train", True)] if run.suite == "procgen" else [])
            for table, tag, train_levels in level_sets:
                original, student = scorer.teacher_score(run, train_levels), scorer.score(run, train_levels)
                if original is None or student is None:
                    continue
                corrupted_eval = (run.info.get("teacher") or {}).get(
                    "evaluation_train_levels" if train_levels else "evaluation"
                )
                corrupted = scorer.score(run, evaluation=corrupted_eval) if corrupted_eval else None
                for row in (f"{run.suite} (σ={run.sigma:g}{tag})", f"{run.env_id} (σ={run.sigma:g}{tag})"):
                    column = cells[(table, row, run.size)]
                    column[run.method][run.env_id][scorer.teacher_id(run)] = (
                        student / original,
                        scorer.score_se(run, train_levels) / original,
                    )
                    if corrupted is not None:
                        corrupted_se = scorer.score_se(run, evaluation=corrupted_eval) / original
                        column["corrupted"][run.env_id][scorer.teacher_id(run)] = (corrupted / original, corrupted_se)
    return cells


def multi_paired_cells(multi_runs: list, runs: list, scorer: Scorer) -> dict:
    """paired_cells' shape for the multi-teacher runs (issue #39), pooled over games ("procgen", and "procgen
    (train)" for training levels): each multi-teacher method ("multi ppd"), the teachers themselves ("teacher",
    fraction 1, from the runs' own evaluations of them), the single-game same-size students of the same teacher
    files ("single ppd", Table 1's runs), and per run pair PPD's lead over a baseline ("multi (ppd − sd)": the
    difference of the two runs' fractions, its SE from both)."""
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    teacher_games = {}  # sha256 of a teacher file -> its game
    for run in multi_runs:
        column = f"multi {MULTI_METHODS.get(multi_method(run), multi_method(run))}"
        for game, record in run.info["games"].items():
            sha = record["teacher"]["sha256"]
            teacher_games[sha] = game
            for tag, suffix in (("", ""), (" (train)", "_train_levels")):
                teacher = record["teacher"].get("evaluation" + suffix)
                fraction = record.get("fraction_of_teacher" + suffix)
                if fraction is None or not teacher:
                    continue
                scale = float(teacher["mean"])
                row = cells[("multi", "procgen" + tag, "same")]
                row[column][game][sha] = (fraction, standard_error(record["evaluation" + suffix]["returns"]) / scale)
                row["teacher"][game][sha] = (1.0, standard_error(teacher["returns"]) / scale)
    for run in runs:
        if run.is_main_grid and run.size == "same" and teacher_games.get(run.teacher_sha256) == run.env_id:
            for tag, train_levels in (("", False), (" (train)", True)):
                fraction = scorer.fraction(run, train_levels)
                if fraction is not None:
                    se = scorer.score_se(run, train_levels) / scorer.teacher_score(run, train_levels)
                    column = f"single {ALL_METHODS[run.method]}"
                    cells[("multi", "procgen" + tag, "same")][column][run.env_id][run.teacher_sha256] = (fraction, se)
    for row in cells.values():
        for kind, baseline in ((k, b) for k in ("multi", "single") for b in ("sd", "td")):
            ppd, other = row.get(f"{kind} ppd", {}), row.get(f"{kind} {baseline}", {})
            for game in set(ppd) & set(other):
                for sha in set(ppd[game]) & set(other[game]):
                    (a, se_a), (b, se_b) = ppd[game][sha], other[game][sha]
                    row[f"{kind} (ppd − {baseline})"][game][sha] = (a - b, float(np.hypot(se_a, se_b)))
    return cells


SIZE_COLUMN = "sizes"  # the size column of the rows that pair two student sizes of one method


def size_cells(cells: dict) -> tuple:
    """paired_cells' Table 1 / 7 cells regrouped to pair one method's students of two sizes distilled from the
    same teacher (the paper's size ordering, Table 1): (table, row, SIZE_COLUMN) -> "smaller ppd" -> env ->
    {teacher: (fraction, se)}, and the (A, B) pairs: each method's smaller − same and same − larger."""
    regrouped, names = defaultdict(dict), {}  # names: the methods' column names (a copied script's is its own)
    for (table, row, size), methods in cells.items():
        if table in ("1", "7"):
            for method, envs in methods.items():
                names.setdefault(method, ALL_METHODS.get(method, method))
                regrouped[(table, row, SIZE_COLUMN)][f"{size} {names[method]}"] = envs
    ordered = [names[m] for m in ALL_METHODS if m in names] + sorted(
        n for m, n in names.items() if m not in ALL_METHODS
    )
    pairs = tuple((f"{a} {name}", f"{b} {name}") for name in ordered for a, b in zip(SIZES, SIZES[1:]))
    return regrouped, pairs


def comparisons(cells: dict, method_pairs: tuple, args: Args) -> list:
    """One row per cell and pair of methods with runs of the same teachers: the mean paired difference of their
    fractions with its stratified-bootstrap interval (when every env has two pairs or more), and P(A > B) with its
    interval (when every env has the same number of pairs, as rliable's runs x envs matrices need; suite rows only:
    rliable's Mann-Whitney costs ~9 ms a resample). cells: paired_cells' (with size_cells') or multi_paired_cells'."""
    rows = []
    for (table, row, size), methods in sorted(
        cells.items(),
        key=lambda kv: (
            kv[0][0],
            kv[0][1].split(" ")[0] not in SUITES,
            kv[0][1],
            SIZES.index(kv[0][2]) if kv[0][2] in SIZES else len(SIZES),  # SIZE_COLUMN's rows after the sizes'
        ),
    ):
        for a, b in method_pairs:
            if a not in methods or b not in methods:
                continue
            envs = sorted(set(methods[a]) & set(methods[b]))
            pairs = {env: sorted(set(methods[a][env]) & set(methods[b][env])) for env in envs}
            pairs = {env: teachers for env, teachers in pairs.items() if teachers}
            if not pairs:
                continue
            names = SHORT.get(a, a), SHORT.get(b, b)
            fraction = {m: {env: {t: v[0] for t, v in methods[m][env].items()} for env in envs} for m in (a, b)}
            diffs = [np.array([[fraction[a][env][t] - fraction[b][env][t]] for t in ts]) for env, ts in pairs.items()]
            n = sum(map(len, pairs.values()))
            # the evaluations' own noise: the SE of the mean difference from each run's episodes
            noise = (
                np.sqrt(
                    sum(
                        methods[a][env][t][1] ** 2 + methods[b][env][t][1] ** 2 for env, ts in pairs.items() for t in ts
                    )
                )
                / n
            )
            mean = float(np.mean(np.concatenate(diffs)))
            z = mean / noise if noise > 0 else float("nan")
            if min(map(len, pairs.values())) < 2:
                # an env with one pair adds no seed spread to a stratified interval (with some envs at two seeds and
                # others at one, it would show the first ones' spread alone): the reading is the evaluations' z alone
                rows.append([table, row, size, *names, n, mean, *[None] * 5, z, reading(None, None, z)])
                continue
            mean, low, high = rliable_estimate(
                diffs, lambda *xs: np.mean(np.concatenate(xs)), args.bootstrap_reps, 0.95, args.seed
            )
            counts = {len(ts) for ts in pairs.values()}
            poi = (None, None, None)
            if len(counts) == 1 and row.split(" ")[0] in SUITES:
                x = np.array([[fraction[a][env][ts[i]] for env, ts in pairs.items()] for i in range(counts.pop())])
                y = np.array([[fraction[b][env][ts[i]] for env, ts in pairs.items()] for i in range(len(x))])
                poi = probability_of_improvement(x, y, args.poi_reps, 0.95, args.seed)
            rows.append([table, row, size, *names, n, mean, low, high, *poi, z, reading(low, high, z)])
    return rows


def comparison_table(rows: list) -> str:
    def interval(value, low, high, digits, sign="+"):
        bounds = f" [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]" if low is not None else ""
        return f"{value:{sign}.{digits}f}{bounds}"

    md = [
        [
            TABLE_LABELS.get(t, f"Table {t}"),
            row,
            size,
            f"{a} − {b}",
            n,
            interval(m, lo, hi, 3),
            interval(p, pl, ph, 2, "") if p is not None else "–",
            f"{z:.1f}",
            said,
        ]
        for t, row, size, a, b, n, m, lo, hi, p, pl, ph, z, said in rows
    ]
    return markdown_table(
        [
            "table",
            "row",
            "size",
            "A − B",
            "pairs",
            "mean paired difference of fractions [95% CI]",
            "P(A > B) [95% CI]",
            "z (episodes)",
            "reading",
        ],
        md,
    )


RUN_HEADER = [
    "run",
    "env",
    "method",
    "size",
    "seed",
    "sigma",
    "episodes",
    "score",
    "se",
    "teacher_score",
    "teacher_se",
    "z_teacher",
    "corrupted_score",
    "corrupted_se",
    "z_corrupted",
]


def z_score(a: float, se_a: float, b: float, se_b: float) -> float:
    """a - b in standard errors of the difference (independent evaluations)."""
    se = np.hypot(se_a, se_b)
    return float((a - b) / se) if se > 0 else float("nan")


def run_rows(runs: list, scorer: Scorer) -> list:
    """Per student run: its raw score and SE, its teacher's, and the corrupted teacher's for Table 2's runs;
    Procgen on test levels."""
    rows = []
    for run in runs:
        if run.method in TEACHER_METHODS:
            continue
        teacher = scorer.teacher_evaluation(run)
        if teacher is None:
            continue
        ev = run.info["evaluation"]
        score, se = float(ev["mean"]), standard_error(ev.get("returns", []))
        t_score, t_se = float(teacher["mean"]), standard_error(teacher.get("returns", []))
        corrupted = (run.info.get("teacher") or {}).get("evaluation") if run.sigma else None
        c = ["", "", ""]
        if corrupted:
            c_score, c_se = float(corrupted["mean"]), standard_error(corrupted.get("returns", []))
            c = [c_score, c_se, z_score(score, se, c_score, c_se)]
        rows.append(
            [
                run.name,
                run.env_id,
                ALL_METHODS.get(run.method, run.method),
                run.size,
                run.info.get("seed"),
                run.sigma,
                ev["episodes"],
                score,
                se,
                t_score,
                t_se,
                z_score(score, se, t_score, t_se),
                *c,
            ]
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Curves and figures
# ---------------------------------------------------------------------------------------------
def read_curves(run_dir: str) -> dict:
    """tag -> (steps, values) for CURVE_TAGS (and a multi-teacher run's CURVE_TAGS/{game}), from curves.csv if the
    folder has one, else tensorboard events."""
    curves = defaultdict(lambda: ([], []))
    csv_path = os.path.join(run_dir, CURVES_FILE)
    if os.path.isfile(csv_path):
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                curves[row["tag"]][0].append(int(row["step"]))
                curves[row["tag"]][1].append(float(row["value"]))
    elif any(name.startswith("events.out.tfevents") for name in os.listdir(run_dir)):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
        acc.Reload()
        # a multi-teacher run's per-game curves too: CURVE_TAGS/{game}
        for tag in [t for t in acc.Tags()["scalars"] if t in CURVE_TAGS or t.rsplit("/", 1)[0] in CURVE_TAGS]:
            for event in acc.Scalars(tag):
                curves[tag][0].append(event.step)
                curves[tag][1].append(event.value)
    return {tag: (np.array(s), np.array(v)) for tag, (s, v) in curves.items() if s}


def normalised_curve(run: Run, scorer: Scorer, problems: list, tags: tuple = CURVE_TAGS):
    """(tag, steps, fraction of teacher) with the first of tags the run has, or None (noted) when it has none."""
    curves = read_curves(run.path)
    tag = next((t for t in tags if t in curves), None)
    if tag is None:
        scorer.note(f"{run.name}: no {' or '.join(tags)} curve; left out of the figures")
        return None
    # Procgen's training returns are on training levels; its --eval-every evaluation is on test levels.
    teacher = scorer.teacher_score(run, train_levels=run.suite == "procgen" and tag.startswith("charts"))
    if teacher is None:
        return None
    steps, values = curves[tag]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    # per-episode returns: a running mean over 10 episodes (fewer in a short run), or 1% of the run's episodes
    # where that is more (a Procgen run ends 30,000+ episodes, far more than the figure's 100 grid points)
    window = max(min(10, len(values) // 10), len(values) // 100, 1)
    if tag.startswith("charts") and window > 1:
        values = np.convolve(values, np.ones(window) / window, mode="valid")
        steps = steps[window - 1 :]
    return tag, steps, np.array([scorer.normalise(run.suite, run.env_id, v) for v in values]) / teacher


BAND_BOOTSTRAP_MIN_RUNS = 5  # a curve of this many runs or more gets a bootstrap interval; fewer: min-max
BAND_BOOTSTRAP_REPS = 2000


def band_kind(runs: int) -> str:
    """What the shaded band around a mean curve of this many runs is (said in the figures' legends)."""
    return "bootstrap 95% CI" if runs >= BAND_BOOTSTRAP_MIN_RUNS else "min–max"


def curve_band(curves: list, points: int = 100, reps: int = BAND_BOOTSTRAP_REPS, seed: int = 0):
    """(grid, mean, low, high) of curves [(steps, values)] on a common grid up to the shortest run's last step.
    The band is, at every grid point, the 95% percentile interval of the mean over runs resampled with
    replacement (reps resamples, a fixed seed: the figures reproduce) when there are at least
    BAND_BOOTSTRAP_MIN_RUNS runs, else the lowest and highest run (see band_kind)."""
    end = min(steps[-1] for steps, _ in curves)
    grid = np.linspace(min(steps[0] for steps, _ in curves), end, points)
    values = np.array([np.interp(grid, steps, v) for steps, v in curves])  # runs x points
    mean = np.mean(values, axis=0)
    if len(values) >= BAND_BOOTSTRAP_MIN_RUNS:
        rng = np.random.default_rng(seed)
        means = values[rng.integers(0, len(values), size=(reps, len(values)))].mean(axis=1)  # reps x points
        low, high = np.percentile(means, [2.5, 97.5], axis=0)
    else:
        low, high = values.min(axis=0), values.max(axis=0)
    return grid, mean, low, high


def band_label(name: str, runs: int, *notes: str) -> str:
    """A legend entry: name (notes; the run count; what the band is)."""
    return f"{name} ({'; '.join([*notes, plural(runs, 'run'), f'band: {band_kind(runs)}'])})"


def plot_band(ax, curves: list, name: str, *notes: str):
    """The mean curve with its shaded band (band_kind says which); band_label names it in the legend."""
    grid, mean, low, high = curve_band(curves)
    (line,) = ax.plot(grid, mean, label=band_label(name, len(curves), *notes))
    ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    return line, grid, mean


def pyplot():
    """matplotlib's pyplot on the file-only backend (imported late: the tables need no plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def draw_panels(panels: list, methods: dict, path: str, scorer: Scorer, problems: list, tags: tuple) -> str:
    """One figure of panels side by side, each (title, runs): each method's curve (the first of tags it has) as a
    fraction of the teacher, the mean over its runs with a shaded band (curve_band)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), sharey=True, squeeze=False)
    for ax, (title, panel_runs) in zip(axes[0], panels):
        for method, short in methods.items():
            found = [
                c
                for r in panel_runs
                if r.method == method
                if (c := normalised_curve(r, scorer, problems, tags)) is not None
            ]
            if found:
                plot_band(ax, [(s, v) for _, s, v in found], short, ", ".join(sorted({t for t, _, _ in found})))
        if not ax.get_lines():
            ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="teacher")
        ax.set_title(title)
        ax.set_xlabel("environment steps")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("return / teacher score")
    save_figure(fig, path)
    plt.close(fig)
    return path


def figure1(runs: list, scorer: Scorer, out_dir: str, problems: list, tags: tuple = CURVE_TAGS) -> list:
    """Per suite, one panel per student size (figure1_{suite}.png); for Procgen also one panel per game of the
    same-size students (figure1_procgen_games.png, issue #38: the paper's Figure 1 is per game)."""
    written = []
    for suite in SUITES:
        suite_runs = [r for r in runs if r.suite == suite and r.is_main_grid]
        if not suite_runs:
            continue
        methods = methods_of(suite_runs)
        panels = [(f"{suite}: {size} student", [r for r in suite_runs if r.size == size]) for size in SIZES]
        written.append(
            draw_panels(panels, methods, os.path.join(out_dir, f"figure1_{suite}.png"), scorer, problems, tags)
        )
        same = [r for r in suite_runs if r.size == "same"]
        if suite == "procgen" and same:
            games = sorted({r.env_id for r in same})
            panels = [(f"{game}: same-size student", [r for r in same if r.env_id == game]) for game in games]
            path = os.path.join(out_dir, "figure1_procgen_games.png")
            written.append(draw_panels(panels, methods, path, scorer, problems, tags))
    return written


def figure2(runs: list, scorer: Scorer, out_dir: str, problems: list, args: Args) -> list:
    """PPD onto larger students with several lambda, on the envs that have a lambda sweep; the circle marks the
    last step below 90% of the teacher; the legend gives the final test fraction (geometric mean). Each mean
    curve has its shaded band (curve_band)."""
    plt = pyplot()
    written = []
    for suite in SUITES:
        ppd = [r for r in runs if r.suite == suite and r.method == "ppd" and r.size == "larger" and r.sigma == 0]
        envs = {r.env_id for r in ppd if r.lam not in (None, 1.0)}
        by_lambda = defaultdict(list)
        for run in ppd:
            if run.env_id in envs:
                by_lambda[float(run.lam)].append(run)
        if not envs:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        tags = set()
        for lam in sorted(by_lambda):
            found = [
                c for r in by_lambda[lam] if (c := normalised_curve(r, scorer, problems, args.curve_tags)) is not None
            ]
            fractions = [f for r in by_lambda[lam] if (f := scorer.fraction(r)) is not None]
            if not found:
                continue
            tags |= {tag for tag, _, _ in found}
            final = f"{geometric_mean(fractions, args.min_fraction)[0]:.2f}x" if fractions else "–"
            line, steps, values = plot_band(ax, [(s, v) for _, s, v in found], f"λ={lam:g}", final)
            below = np.flatnonzero(values < 0.9)
            if len(below):
                ax.plot(steps[below[-1]], values[below[-1]], "o", color=line.get_color())
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax.axhline(0.9, color="gray", linestyle="--", linewidth=1)
        ax.set_title(f"{suite}: PPD, larger student, {', '.join(sorted(envs))}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"return / teacher score ({', '.join(sorted(tags)) or 'no curve'})")
        ax.legend(fontsize=8)
        path = os.path.join(out_dir, f"figure2_{suite}.png")
        save_figure(fig, path)
        plt.close(fig)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def extract(runs: list, dest: str) -> None:
    """Copy eval.json and the curves (CURVE_TAGS only, as curves.csv) of every finished run: a compact folder
    that this tool reads like the original."""
    for run in runs:
        folder = os.path.join(dest, run.name)
        os.makedirs(folder, exist_ok=True)
        write_json(os.path.join(folder, "eval.json"), run.info)
        curves = read_curves(run.path)
        if curves:
            rows = [[tag, int(s), f"{v:.6g}"] for tag in sorted(curves) for s, v in zip(*curves[tag])]
            write_text(os.path.join(folder, CURVES_FILE), csv_text(["tag", "step", "value"], rows))


def report(args: Args) -> str:
    if args.extract_only and not args.extract_to:
        raise UsageError("--extract-only needs --extract-to")
    unknown = [t for t in args.curve_tags if t not in CURVE_TAGS]
    if unknown or not args.curve_tags:
        raise UsageError(f"--curve-tags takes {' and/or '.join(CURVE_TAGS)}, not {' '.join(unknown) or 'nothing'}")
    problems: list = []
    runs = load_runs(args.runs_dir, problems)
    if args.extract_to:
        extract(runs, args.extract_to)
    if args.extract_only:
        return f"copied {plural(len(runs), 'finished run')} to {args.extract_to}"
    multi_runs = [run for run in runs if run.info.get("games")]  # multi-teacher runs: their own table
    runs = [run for run in runs if not run.info.get("games")]
    scorer = Scorer(runs, args.atari_scores, problems, args.teachers_dirs)
    problems += [f"{run.name}: {why}; left out" for run in runs if (why := not_shown(run))]
    teachers = sum(r.method in TEACHER_METHODS for r in runs)
    os.makedirs(args.out_dir, exist_ok=True)
    parts = [
        f"# Report of {args.runs_dir}",
        "",
        f"{plural(len(runs) - teachers, 'distillation run')} and {plural(teachers, 'teacher run')}. Fractions "
        f"of the student's own teacher, geometric mean over envs and seeds (Atari human-normalised; Procgen on "
        f"test levels). '*': a fraction <= {args.min_fraction} was raised to {args.min_fraction}. "
        f"'{PARTIAL_MARK}': the cell lacks some of its row's envs (a grid in progress, or a variant run on "
        f"some envs only), so it does not compare with the row's full cells. Teacher score: the mean score of a "
        f"row's teachers when they are of one env (or Atari's, human-normalised); '–' for a row of several "
        f"envs, whose raw scores do not average (Table 5 has them per env). A copied script's runs (a file name "
        f"none of the project's scripts has) are a column of their own, named by the file. IQM: "
        f"interquartile mean [95% stratified-bootstrap CI, {args.bootstrap_reps} resamples].",
    ]
    t1, t1_iqm, t1_rows = table1(runs, scorer, args)
    parts += ["", "## Table 1: fraction of teacher, geometric mean", "", t1, "", "## Table 1: IQM [95% CI]", "", t1_iqm]
    write_text(
        os.path.join(args.out_dir, "table1.csv"),
        csv_text(["suite", "teacher_score", "size", "method"] + STATS_HEADER, t1_rows),
    )
    t2, t2_corrupted, t2_rows = table2(runs, scorer, args)
    if t2:
        parts += ["", "## Tables 2, 6 and 8: imperfect teachers, fractions of the original teacher", "", t2]
        parts += ["", "## Table 2: the same students, fractions of the corrupted teacher (above 1: beyond it)", ""]
        parts += [t2_corrupted]
        write_text(
            os.path.join(args.out_dir, "table2.csv"),
            csv_text(["env", "original_teacher_score", "column"] + STATS_HEADER, t2_rows),
        )
    if multi_runs:
        tm, tm_rows = table_multi(multi_runs, runs, scorer, args)
        parts += [
            "",
            "## Multi-teacher students: fraction of each game's teacher, geometric mean over seeds (runs)",
            "",
            "multi_teacher_procgen.py (issue #39): one student for all its games; 'single': the single-game "
            "same-size students of the same teacher files. 'all games': the geometric mean over games and seeds.",
            "",
            tm,
        ]
        write_text(
            os.path.join(args.out_dir, "table_multi.csv"),
            csv_text(["game", "levels", "column"] + STATS_HEADER, tm_rows),
        )
    t5, t5_rows = table5(runs, scorer)
    if t5:
        parts += ["", "## Table 5: scores per env (mean over seeds; Atari human-normalised)", "", t5]
        write_text(
            os.path.join(args.out_dir, "table5.csv"),
            csv_text(
                ["section", "env", "teacher_score"] + grid_header(methods_of([r for r in runs if r.is_main_grid])),
                t5_rows,
            ),
        )
    if any(r.suite == "procgen" for r in runs):
        t7, t7_rows = table7(runs, scorer, args)
        parts += ["", "## Table 7: Procgen, training levels against test levels", "", t7]
        write_text(
            os.path.join(args.out_dir, "table7.csv"),
            csv_text(["levels", "teacher_score", "size", "method"] + STATS_HEADER, t7_rows),
        )
        pace_header, pace_rows = table_pace(runs, scorer)
        if pace_rows:
            parts += [
                "",
                "## Procgen: the students' play during distillation",
                "",
                "Fraction of the teacher's test-level score: at each step count, the mean of the student's "
                f"--eval-every evaluations (test levels) in the {PACE_WINDOW // 1000}k steps up to it, averaged over "
                "seeds (n runs).",
                "",
                markdown_table(pace_header, pace_rows),
            ]
            write_text(os.path.join(args.out_dir, "table_pace.csv"), csv_text(pace_header, pace_rows))
    cells = paired_cells(runs, scorer)
    by_size, size_pairs = size_cells(cells)  # their keys and pairs are apart from the methods': one sorted table
    compared = comparisons({**cells, **by_size}, PAIRS + size_pairs, args)
    compared += comparisons(multi_paired_cells(multi_runs, runs, scorer), MULTI_PAIRS, args)
    if compared:
        parts += [
            "",
            "## Comparisons: paired differences and probability of improvement",
            "",
            "Each student's fraction of its teacher minus the other method's student of the same teacher (same "
            "env and seed), averaged over those pairs, with a 95% stratified-bootstrap interval (pairs resampled "
            f"within each env, {args.bootstrap_reps} resamples, rliable); P(A > B): rliable's probability of "
            f"improvement with its interval ({args.poi_reps} resamples; suite rows only: '–' for env rows and "
            "where envs have unequal numbers of pairs); z: the mean difference in standard errors of the "
            'evaluations\' own episode noise. Reading (docs/results.md): "above" or "below" only when the '
            "interval over seeds excludes zero (none when an env of the row has one pair: z alone reads it) and "
            '|z| >= 2, else "level within noise". '
            "Table 1 and 7 rows: uncorrupted teachers; size 'sizes': one method's students of two sizes (smaller − "
            "same, same − larger) from the same teacher. Table 2 rows (Table 8: Procgen's training levels): "
            "fractions of the original teacher, the corrupted teacher as a column of its own. Multi-teacher rows "
            "(issue #39): pairs "
            "of one game and seed, pooled over the games (the games are the strata); 'teacher': the game's teacher "
            "(fraction 1, from the multi-teacher run's own evaluation of it); 'single': the single-game same-size "
            "student of the same teacher file; '(ppd − sd)': a PPD run's fraction minus the baseline's, so the "
            "multi − single row says whether PPD's lead changes when one network holds every game.",
            "",
            comparison_table(compared),
        ]
        write_text(
            os.path.join(args.out_dir, "comparisons.csv"),
            csv_text(COMPARISON_HEADER, [[fixed(v) for v in row] for row in compared]),
        )
    per_run = run_rows(runs, scorer)
    if per_run:
        parts += [
            "",
            "## Runs against their teachers",
            "",
            "runs.csv: each student's raw score (Procgen: test levels) and the standard error of its evaluation "
            "episodes, its teacher's, and their difference in standard errors (z); for an imperfect teacher "
            "also the corrupted teacher's score and z against it.",
        ]
        write_text(
            os.path.join(args.out_dir, "runs.csv"), csv_text(RUN_HEADER, [[fixed(v) for v in row] for row in per_run])
        )
    figures = figure1(runs, scorer, args.out_dir, problems, args.curve_tags) + figure2(
        runs, scorer, args.out_dir, problems, args
    )
    parts += [
        "",
        "## Figures",
        "",
        f"Each curve is the mean over its runs; its shaded band is a 95% bootstrap "
        f"interval of that mean ({BAND_BOOTSTRAP_REPS} resamples of the runs, seed 0) for curves of "
        f"{BAND_BOOTSTRAP_MIN_RUNS} runs or more, else the lowest to the highest run; the legend says which.",
        "",
    ] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in figures]
    parts += ["", "## Left out", ""] + ([f"- {p}" for p in problems] or ["- nothing"])
    text = "\n".join(parts) + "\n"
    write_text(os.path.join(args.out_dir, "report.md"), text)
    return text


def main() -> None:
    args = tyro.cli(Args)
    try:
        text = report(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(text)


if __name__ == "__main__":
    run_main(main)
