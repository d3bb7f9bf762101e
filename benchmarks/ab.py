"""A/B speed of one training command at two commits, in one sitting on one machine: the runs alternate (A, B, A,
B, ...) so that a load that drifts meanwhile hits both alike, each in a fresh interpreter with one torch thread, and
each run's steps/s comes from its tensorboard wall times after the first update (benchmarks/throughput.py's rule).
It prints each side's mean and standard error and the ratio B / A with a 95% interval over the pairs.

    python benchmarks/ab.py --base e4c6f58 --pairs 4 -- ppd_mujoco.py --env-id Hopper --student larger \\
        --total-timesteps 9216
The command's script is run from a worktree of --base (A) and from this tree as it is (B: uncommitted changes
included); a relative --teacher-path is read from this tree for both.
"""

import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import tyro

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from throughput import run as measured_sps  # noqa: E402


@dataclass
class Args:
    command: tyro.conf.Positional[tuple[str, ...]]
    """the script and its flags, after --"""
    base: str = "HEAD"
    """the commit of side A"""
    pairs: int = 3
    """A/B pairs"""
    threads: str = "1"
    """OMP_NUM_THREADS of every run"""


def mean_se(values: list) -> tuple[float, float]:
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / max(len(values) - 1, 1)
    return m, math.sqrt(var / len(values))


def main() -> None:
    args = tyro.cli(Args)
    script, flags = args.command[0], list(args.command[1:])
    if "--teacher-path" in flags:
        i = flags.index("--teacher-path") + 1
        flags[i] = os.path.abspath(flags[i])
    os.environ["OMP_NUM_THREADS"] = args.threads
    base = tempfile.mkdtemp(prefix="ab_base_")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", base, args.base], check=True, capture_output=True)
    try:
        sps = {"A": [], "B": []}
        for pair in range(args.pairs):
            for side, tree in (("A", base), ("B", ROOT)):
                with tempfile.TemporaryDirectory() as cwd:
                    sps[side].append(measured_sps(os.path.join(tree, script), flags, cwd))
                print(f"pair {pair + 1} {side}: {sps[side][-1]:,.1f} steps/s", flush=True)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base], capture_output=True)
    ratios = [b / a for a, b in zip(sps["A"], sps["B"])]
    (ma, sa), (mb, sb), (mr, sr) = mean_se(sps["A"]), mean_se(sps["B"]), mean_se(ratios)
    half = 1.96 * sr if len(ratios) > 1 else float("nan")
    print(f"\n{script} {' '.join(args.command[1:])}, OMP_NUM_THREADS={args.threads}, {args.pairs} pairs")
    print(f"A ({args.base}): {ma:,.1f} ± {sa:,.1f} steps/s; B (this tree): {mb:,.1f} ± {sb:,.1f} steps/s")
    print(f"B / A: {mr:.3f} (95% interval {mr - half:.3f} to {mr + half:.3f})")


if __name__ == "__main__":
    main()
