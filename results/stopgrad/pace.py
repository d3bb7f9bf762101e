"""Pace and final score of the 2M-step Mujoco runs per method, for issue #21 (PPD with the ratio's gradient
stopped in the distillation term, `--distill-ratio stopgrad`, beside Eq. 2's PPD and the two baselines).

Reads results/runs/*/ (eval.json and curves.csv, as results/run_grid.sh commits them). Per run: the fraction of
its original (uncorrupted) teacher's score, from the 10-episode `eval/episodic_return` evaluations every 100k
steps, at the first evaluation past 100k, 200k, 500k and 1M steps, and the first evaluation step at which it
reaches 0.9; "late" is the mean of its evaluations from 1.5M steps on (5 x 10 episodes: a second estimate of
the end level, less tied to the one policy of the last step); the final fraction is the 50-episode evaluation of
eval.json. Per cell (student size, sigma, method; lambda 1 only): the mean fraction at each step and late over
its runs, the geometric mean of the final fractions, and the median step to 0.9 (with how many runs reached it).

    python results/stopgrad/pace.py                     # prints the markdown tables
    python results/stopgrad/pace.py --out results/stopgrad/pace.md
    python results/stopgrad/pace.py --paired     # only the env x seed pairs that have a stopgrad run (while
                                                 # the study is incomplete: the methods on the same teachers)
"""

import argparse
import csv
import json
import os
import statistics
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABELS = {"teacher_distill": "td", "student_distill": "sd", "ppd": "ppd", "ppd_stopgrad": "ppd-sg"}
STEPS = (100_000, 200_000, 500_000, 1_000_000)
LATE = 1_500_000


def method_of(info: dict) -> str:
    if info["method"] == "ppd" and info.get("distill_ratio", "eq2") != "eq2":
        return f"ppd_{info['distill_ratio']}"
    return info["method"]


def teacher_score(info: dict, teachers_dir: str) -> float:
    """The original teacher's 50-episode score: the .json beside its file in teachers/, matched by sha256."""
    name = os.path.basename(info["teacher"]["path"])[:-3] + ".json"
    with open(os.path.join(teachers_dir, name)) as f:
        record = json.load(f)
    assert record["checkpoint_sha256"] == info["teacher"]["sha256"], name
    return record["evaluation"]["mean"]


def run_rows(runs_dir: str, teachers_dir: str) -> list:
    rows = []
    for name in sorted(os.listdir(runs_dir)):
        with open(os.path.join(runs_dir, name, "eval.json")) as f:
            info = json.load(f)
        method = method_of(info)
        if method not in LABELS or info.get("distill_lambda") not in (None, 1.0) or info["suite"] != "mujoco":
            continue  # the coinrun runs (issues #20, #21) get their own report
        teacher = teacher_score(info, teachers_dir)
        with open(os.path.join(runs_dir, name, "curves.csv")) as f:
            curve = sorted(
                (int(r["step"]), float(r["value"]) / teacher)
                for r in csv.DictReader(f)
                if r["tag"] == "eval/episodic_return"
            )
        at = {s: next((v for step, v in curve if step >= s), None) for s in STEPS}
        reach = next((step for step, v in curve if v >= 0.9), None)
        late = [v for step, v in curve if step >= LATE]
        rows.append(
            {
                "run": name,
                "env": info["env_id"],
                "seed": info["seed"],
                "size": info["student_size"],
                "sigma": info["teacher"]["corruption_sigma"],
                "method": LABELS[method],
                "at": at,
                "reach": reach,
                "late": float(np.mean(late)),
                "final": info["evaluation"]["mean"] / teacher,
            }
        )
    return rows


def paired(rows: list) -> list:
    """Per (sigma, size): only the (env, seed) pairs that have a ppd-sg run."""
    have = {(r["sigma"], r["size"], r["env"], r["seed"]) for r in rows if r["method"] == "ppd-sg"}
    return [r for r in rows if (r["sigma"], r["size"], r["env"], r["seed"]) in have]


def tables(rows: list) -> str:
    cells = defaultdict(list)
    for row in rows:
        cells[(row["sigma"], row["size"], row["method"])].append(row)
    lines = [
        "| σ | student | method | runs | "
        + " | ".join(f"at {s // 1000}k" for s in STEPS)
        + " | steps to 0.9 (median; reached) | late (from 1.5M) | final (GM) |",
        "|" + "---|" * (7 + len(STEPS)),
    ]
    order = {m: i for i, m in enumerate(LABELS.values())}
    for sigma, size, method in sorted(
        cells, key=lambda k: (k[0], ("smaller", "same", "larger").index(k[1]), order[k[2]])
    ):
        group = cells[(sigma, size, method)]
        means = [np.mean([r["at"][s] for r in group if r["at"][s] is not None]) for s in STEPS]
        reached = [r["reach"] for r in group if r["reach"] is not None]
        reach = (
            f"{statistics.median(reached) / 1e6:.2f}M; {len(reached)}/{len(group)}" if reached else f"–; 0/{len(group)}"
        )
        final = float(np.exp(np.mean(np.log(np.maximum([r["final"] for r in group], 0.01)))))
        late = np.mean([r["late"] for r in group])
        lines.append(
            f"| {sigma:g} | {size} | {method} | {len(group)} | "
            + " | ".join(f"{m:.2f}" for m in means)
            + f" | {reach} | {late:.2f} | {final:.2f} |"
        )
    per_run = [
        "| run | " + " | ".join(f"at {s // 1000}k" for s in STEPS) + " | step to 0.9 | late | final |",
        "|" + "---|" * (4 + len(STEPS)),
    ]
    for row in rows:
        if row["method"] in ("ppd", "ppd-sg"):
            per_run.append(
                f"| {row['run']} | "
                + " | ".join(f"{row['at'][s]:.2f}" for s in STEPS)
                + f" | {row['reach'] if row['reach'] is not None else '–'} | {row['late']:.2f}"
                + f" | {row['final']:.3f} |"
            )
    return "\n".join(lines) + "\n\nPPD runs, Eq. 2 and stopgrad:\n\n" + "\n".join(per_run) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default=os.path.join(ROOT, "results", "runs"))
    parser.add_argument("--teachers-dir", default=os.path.join(ROOT, "teachers"))
    parser.add_argument("--out", default=None, help="also write the tables to this file")
    parser.add_argument("--paired", action="store_true", help="only the env x seed pairs with a stopgrad run")
    args = parser.parse_args()
    rows = run_rows(args.runs_dir, args.teachers_dir)
    text = tables(paired(rows) if args.paired else rows)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
    print(text)


if __name__ == "__main__":
    main()
