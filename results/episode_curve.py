"""A training run's episode returns (charts/episodic_return in its tensorboard files) as a CSV to commit, for the
runs that train in pieces (results/pixels/*.sh, teachers/train_10m.sh).

    python results/episode_curve.py RUN_DIR OUT.csv            # one row per episode: step, episodic_return
    python results/episode_curve.py RUN_DIR OUT.csv --bin 20000  # one row per 20,000 steps: step, episodes, mean_return

A run resumed on another machine has only the events written there: rows of OUT.csv before its first event are
kept. The file is replaced atomically.
"""

import argparse
import csv
import os
from collections import defaultdict

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def episode_rows(run_dir: str, bin_steps: int) -> list:
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars("charts/episodic_return") if "charts/episodic_return" in acc.Tags()["scalars"] else []
    if not bin_steps:
        return [(e.step, round(e.value, 2)) for e in events]
    bins = defaultdict(list)
    for e in events:  # the bin ending at step b holds the episodes that ended in (b - bin_steps, b]
        bins[(e.step - 1) // bin_steps * bin_steps + bin_steps].append(e.value)
    return [(step, len(v), round(sum(v) / len(v), 2)) for step, v in sorted(bins.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("out")
    parser.add_argument("--bin", type=int, default=0, help="steps per row (0: one row per episode)")
    args = parser.parse_args()
    rows = episode_rows(args.run_dir, args.bin)
    header = ["step", "episodes", "mean_return"] if args.bin else ["step", "episodic_return"]
    if os.path.isfile(args.out):
        first = rows[0][0] if rows else float("inf")
        with open(args.out) as f:
            reader = csv.reader(f)
            if next(reader, None) == header:
                earlier = [
                    tuple(int(x) if i == 0 or (args.bin and i == 1) else float(x) for i, x in enumerate(row))
                    for row in reader
                    if int(row[0]) < first
                ]
                rows = earlier + rows
    with open(args.out + ".tmp", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(args.out + ".tmp", args.out)
    episodes = sum(r[1] for r in rows) if args.bin else len(rows)
    print(f"{episodes} episodes up to step {rows[-1][0] if rows else 0}")


if __name__ == "__main__":
    main()
