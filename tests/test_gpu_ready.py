"""Issue #40, what a CPU can check of the GPU path: no distribution validates its arguments (each check is a
GPU-to-CPU wait), checkpoints carry every generator and the device, a resume on another device is refused, the
device is printed and recorded, and --bf16 (autocast) trains with float32 losses close to the float32 run's.
benchmarks/gpu_check.sh checks the rest on a GPU (tests/test_benchmark.py runs it here on the CPU)."""

import json
import math
import random
import subprocess
import sys

import numpy as np
import torch

from conftest import (
    CANONICAL,
    ROOT,
    TINY,
    TINY_STEPS,
    load_script,
    one_error_line,
    read_json,
    read_scalars,
    run_main,
    tiny_args,
)

# Each script imported fresh with torch's default (validation on), then trained and evaluated through its own train():
# every torch.distributions object it makes is counted if it would validate.
PROBE = r"""
import json, os, sys
from torch.distributions import Distribution
sys.path.insert(0, sys.argv[1])
made = []
plain_init = Distribution.__init__
def counting_init(self, *args, **kwargs):
    plain_init(self, *args, **kwargs)
    made.append(self._validate_args)
Distribution.__init__ = counting_init
report = {}
for script, argv, cwd in json.loads(sys.argv[2]):
    Distribution.set_default_validate_args(True)
    module = __import__(script)
    os.chdir(cwd)
    sys.argv = [script + ".py", *argv]
    module.train(module.parse_args())
    report[script] = [len(made), sum(made)]
    made.clear()
print(json.dumps(report))
"""

RUNS = [
    ("ppo_teacher_mujoco", "mujoco"),
    ("ppo_teacher_atari", "atari"),
    ("ppo_teacher_procgen", "procgen"),
    ("ppd_mujoco", "mujoco"),
    ("ppd_atari", "atari"),
    ("ppd_procgen", "procgen"),
    ("student_distill", "mujoco"),
    ("teacher_distill", "procgen"),
]


def tiny_teacher(teacher_runs, suite: str) -> str:
    return str(teacher_runs[suite][0] / "teachers" / f"{CANONICAL[suite]}__1.pt")


def test_no_distribution_validates_in_training_or_evaluation(teacher_runs, tmp_path):
    runs = [
        (
            script,
            [*map(str, tiny_args(script, suite, tiny_teacher(teacher_runs, suite))), "--run-name", script],
            str(tmp_path),
        )
        for script, suite in RUNS
    ]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, ROOT, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=900,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    for script, (made, validating) in report.items():
        assert made > 100, (script, made)  # the probe saw the rollouts', updates' and evaluations' distributions
        assert validating == 0, f"{script}: {validating} of {made} distributions validate their arguments"


def test_checkpoints_carry_the_device_and_every_generator(teacher_runs):
    module = load_script("ppo_teacher_mujoco")
    state = torch.load(teacher_runs["mujoco"][0] / "runs" / "tiny" / "checkpoint.pt", weights_only=True)
    assert state["device"] == "cpu" and state["rng"]["cuda"] is None  # no CUDA was touched on this machine
    assert set(state["rng"]) == {"torch", "numpy", "python", "cuda"}

    # the saved state, through a file as a checkpoint holds it, restarts every stream where it was
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    saved = module.rng_state()
    expected = (torch.rand(4), np.random.rand(4), random.random(), torch.randperm(50))
    torch.manual_seed(6), np.random.seed(6), random.seed(6)
    path = teacher_runs["mujoco"][0] / "rng.pt"
    torch.save(saved, path)
    module.set_rng_state(torch.load(path, weights_only=True))
    got = (torch.rand(4), np.random.rand(4), random.random(), torch.randperm(50))
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    assert torch.equal(got[3], expected[3])


def test_a_run_is_not_resumed_on_another_device(teacher_runs, tmp_path):
    state = torch.load(teacher_runs["mujoco"][0] / "runs" / "tiny" / "checkpoint.pt", weights_only=True)
    state["device"] = "cuda"  # as a run trained on a GPU box writes it
    (tmp_path / "runs" / "gpu_run").mkdir(parents=True)
    torch.save(state, tmp_path / "runs" / "gpu_run" / "checkpoint.pt")
    proc = run_main(
        "ppo_teacher_mujoco.py", ["--resume", "runs/gpu_run", "--total-timesteps", "4096"], tmp_path, check=False
    )
    one_error_line(
        proc.stderr,
        proc.returncode,
        "runs/gpu_run/checkpoint.pt trained on cuda; resuming it on cpu "
        "would change its random streams: resume it on cuda",
    )


def test_the_device_is_printed_and_recorded(teacher_runs):
    module = load_script("ppo_teacher_mujoco")
    for suite in ("mujoco", "procgen"):
        work, proc = teacher_runs[suite]
        line = next(line for line in proc.stdout.splitlines() if line.startswith("device: "))
        assert line.startswith(
            f"device: cpu ({module.cpu_name()}, {torch.get_num_threads()} torch threads), torch {torch.__version__}"
        ), line
        ran_on = read_json(work / "runs" / "tiny" / "eval.json")["ran_on"]
        assert (ran_on["device"], ran_on["torch"], ran_on["cuda"]) == ("cpu", torch.__version__, torch.version.cuda)
        assert "cuda_visible_devices" in ran_on and ran_on["args"]["bf16"] is False


def first_losses(run_dir) -> dict:
    return {tag: values for tag, values in read_scalars(str(run_dir)).items() if tag.startswith("losses/")}


def test_bf16_trains_with_float32_losses_close_to_the_float32_runs(teacher_runs, tmp_path):
    """The same tiny PPD run with and without --bf16 (autocast runs on a CPU too): the first update's losses agree
    within 5% (+1e-3), the KL stays finite through the run, and the bf16 run did compute in bfloat16 (its losses
    are not bit-equal). Measured once on a tiny ppd_procgen run: at most 0.6% in the first update."""
    for script, suite in (("ppd_procgen.py", "procgen"), ("ppd_mujoco.py", "mujoco")):
        args = [
            *TINY[suite],
            "--total-timesteps",
            2 * TINY_STEPS[suite],
            "--teacher-path",
            tiny_teacher(teacher_runs, suite),
            "--student",
            "smaller",
        ]
        for name, flag in (("fp32", "--no-bf16"), ("bf16", "--bf16")):
            run_main(script, [*args, flag, "--run-name", f"{suite}_{name}"], tmp_path)
        fp32, bf16 = (
            first_losses(tmp_path / "runs" / f"{suite}_fp32"),
            first_losses(tmp_path / "runs" / f"{suite}_bf16"),
        )
        assert read_json(tmp_path / "runs" / f"{suite}_bf16" / "eval.json")["ran_on"]["args"]["bf16"] is True
        assert all(math.isfinite(v) for _, v in bf16["losses/distill_kl"]) and len(bf16["losses/distill_kl"]) >= 2
        for tag in ("losses/value_loss", "losses/entropy", "losses/distill_kl", "losses/distill_loss"):
            (_, a), (_, b) = fp32[tag][0], bf16[tag][0]
            assert abs(a - b) <= 0.05 * abs(a) + 1e-3, (suite, tag, a, b)
        assert any(fp32[tag] != bf16[tag] for tag in fp32), f"{script}: --bf16 changed nothing"
