"""The prepared GPU check of issue #40: what a CPU machine cannot test of the scripts on CUDA, in one run of about
8 minutes on one GPU with the CUDA build of torch, its results in one JSON file (with a markdown report inside,
printed at the end). benchmarks/gpu_check.sh runs it.

1. The wheel: torch, its CUDA version, the device, and whether an NVIDIA driver waits for a CUDA build.
2. Every one of the eight scripts for a few updates on the device, under torch.cuda.set_sync_debug_mode("warn"): the
   synchronising calls, counted per source line (a sync per env step is the action's copy to the host).
3. The same tiny runs with --no-cuda: each run's first-update losses on the device beside the CPU's.
4. A run interrupted by SIGTERM and resumed: the generators restored from its checkpoint are the ones it saved
   (before issue #40 a resumed GPU run re-seeded its CUDA generator and replayed its first random numbers).
5. A checkpoint trained on the device evaluated on the CPU (tools/evaluate.py --no-cuda).
6. Steps/s of PPD onto the larger student on Pong and of PPD on Hopper (the shipped teachers), with and without
   --bf16, on the device, and on the CPU of the same machine.

Without CUDA every step still runs, on the CPU and with short budgets (CI runs it so, tests/test_benchmark.py), and
the file says so: its figures are then no GPU figures.

    bash benchmarks/gpu_check.sh                          # writes gpu_check.json
    bash benchmarks/gpu_check.sh --out results.json --keep-work
"""

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
import tyro

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)
from throughput import run as measured_sps  # noqa: E402

# Tiny runs: a few updates each (tiny teacher networks; students onto the smaller network).
TINY = {
    "mujoco": ["--env-id", "Hopper", "--num-envs", "4", "--num-steps", "64", "--total-timesteps", "768"],
    "atari": [
        "--env-id",
        "Pong",
        "--num-envs",
        "4",
        "--num-steps",
        "32",
        "--total-timesteps",
        "384",
        "--max-episode-steps",
        "50",
    ],
    "procgen": ["--env-id", "starpilot", "--num-envs", "4", "--num-steps", "32", "--total-timesteps", "384"],
}
TEACHER_NET = {
    "mujoco": ["--hidden-sizes", "32", "32"],
    "atari": ["--channels", "4", "4", "4", "--fc-size", "16"],
    "procgen": ["--channels", "4", "4", "4", "--fc-size", "16"],
}
ENV_IDS = {"mujoco": "Hopper-v4", "atari": "Pong-v5", "procgen": "starpilot"}
# script -> its suite in this check (the baselines serve every suite: one pixel suite, one Mujoco)
RUNS = {
    "ppo_teacher_mujoco": "mujoco",
    "ppo_teacher_atari": "atari",
    "ppo_teacher_procgen": "procgen",
    "ppd_mujoco": "mujoco",
    "ppd_atari": "atari",
    "ppd_procgen": "procgen",
    "student_distill": "atari",
    "teacher_distill": "mujoco",
}
LOSSES = ("losses/value_loss", "losses/entropy", "losses/policy_loss", "losses/distill_loss", "losses/distill_kl")


@dataclass
class Args:
    out: str = "gpu_check.json"
    """the results file (JSON, its markdown report under "report"), written atomically"""
    work: str = ""
    """folder of the runs (default: a temporary one, removed at the end unless --keep-work)"""
    keep_work: bool = False
    """keep the runs' folder"""
    throughput_updates: int = 6
    """updates of each steps/s run on the device (the first, with its start-up, is left out)"""
    cpu_pong_updates: int = 2
    """updates of the Pong CPU figure (the larger student: minutes per update on a CPU; 0 skips it)"""


def tiny_args(script: str, teachers: str) -> list:
    suite = RUNS[script]
    flags = [*TINY[suite], "--eval-episodes", "0", "--checkpoint-every", "1"]
    if script.startswith("ppo_teacher"):
        return [*flags, *TEACHER_NET[suite], "--minibatch-size", "64"]
    flags += ["--teacher-path", os.path.join(teachers, "teachers", f"{ENV_IDS[suite]}__1.pt"), "--student", "smaller"]
    return flags + (["--minibatch-size", "64"] if script.startswith("ppd") else [])


# ------------------------------------------------------------------------------------------------------------------
# In a fresh interpreter (`gpu_check.py probe SPEC`): one script's train() with its syncs and its restored
# generators recorded.
# ------------------------------------------------------------------------------------------------------------------
def probe(spec: dict) -> dict:
    import warnings

    module = importlib.import_module(spec["script"])
    os.chdir(spec["cwd"])
    sys.argv = [f"{spec['script']}.py", *spec["argv"]]
    args = module.parse_args()
    restored = {}
    plain_set_rng_state = module.set_rng_state

    def recording_set_rng_state(state):
        plain_set_rng_state(state)
        restored["torch"] = torch.get_rng_state()
        restored["cuda"] = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    module.set_rng_state = recording_set_rng_state
    cuda = torch.cuda.is_available() and args.cuda
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
        module.STOP.arm()
        module.train(args, module.given_flags(spec["argv"]))
        if cuda:
            torch.cuda.set_sync_debug_mode(0)
    syncs = {}
    for w in caught:
        if "synchroniz" in str(w.message).lower():
            where = f"{os.path.basename(w.filename)}:{w.lineno}"
            syncs[where] = syncs.get(where, 0) + 1
    if restored:
        torch.save(restored, os.path.join(spec["cwd"], "restored_rng.pt"))
    return {"syncs": syncs, "vector_steps": args.total_timesteps // args.num_envs}


def run_probe(script: str, argv: list, cwd: str) -> dict:
    spec = {"script": script, "argv": [str(a) for a in argv], "cwd": cwd}
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "probe", json.dumps(spec)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(spec['argv'])} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def first_losses(run_dir: str) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag)[0].value for tag in LOSSES if tag in acc.Tags()["scalars"]}


# ------------------------------------------------------------------------------------------------------------------
# The six steps
# ------------------------------------------------------------------------------------------------------------------
def wheel() -> dict:
    driver = os.path.exists("/proc/driver/nvidia/version")
    cuda = torch.cuda.is_available()
    if cuda:
        verdict = "CUDA build on a GPU"
    elif torch.version.cuda is None and driver:
        verdict = "CPU build of torch on a machine with an NVIDIA driver: install the CUDA build (README, Set-up)"
    else:
        verdict = "no usable GPU: every step runs on the CPU, with short budgets; no figure here is a GPU figure"
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "nvidia_driver": driver,
        "device_name": torch.cuda.get_device_name(0) if cuda else None,
        "verdict": verdict,
    }


def tiny_runs(work: str, cuda: bool) -> dict:
    """Steps 2 and 3: each script on the device (its syncs counted) and with --no-cuda; students of both read the
    teacher the device trained, so their losses differ by the device alone. Without CUDA the two are the same run:
    two scripts repeat it (their losses must be bit-equal), the others run once."""
    out = {}
    for device in ("device", "cpu"):
        os.makedirs(os.path.join(work, device), exist_ok=True)
    for script in RUNS:
        argv = tiny_args(script, os.path.join(work, "device"))
        row = {}
        for device, flag in (("device", "--cuda"), ("cpu", "--no-cuda")):
            if device == "cpu" and not cuda and script not in ("ppo_teacher_mujoco", "ppd_atari"):
                continue
            cwd = os.path.join(work, device)
            started = time.time()
            result = run_probe(script, [*argv, flag, "--run-name", script], cwd)
            row[device] = {
                "seconds": round(time.time() - started, 1),
                "losses": first_losses(os.path.join(cwd, "runs", script)),
            }
            if device == "device":
                row["syncs"] = result["syncs"]
                row["syncs_total"] = sum(result["syncs"].values())
                row["syncs_per_vector_step"] = round(row["syncs_total"] / result["vector_steps"], 3)
        row["max_relative_loss_difference"] = (
            max(
                abs(row["device"]["losses"][k] - row["cpu"]["losses"][k]) / max(abs(row["cpu"]["losses"][k]), 1e-8)
                for k in row["cpu"]["losses"]
            )
            if "cpu" in row
            else None
        )
        out[script] = row
        compared = (
            f"first-update losses within {row['max_relative_loss_difference']:.2e} of the CPU's"
            if "cpu" in row
            else "no CPU run (the device is the CPU)"
        )
        print(f"{script}: {row['syncs_total']} syncs on the device, {compared}", flush=True)
    return out


def interrupt_and_resume(work: str, device_cuda: bool) -> dict:
    """Step 4: PPD (Atari) with a checkpoint every update, SIGTERM after its second update, then --resume."""
    cwd = os.path.join(work, "device")
    argv = [*tiny_args("ppd_atari", cwd), "--run-name", "resumed"]
    argv[argv.index("--total-timesteps") + 1] = str(40 * 4 * 32)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "ppd_atari.py"), *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    updates = 0
    for line in proc.stdout:
        updates += line.startswith("step ")
        if updates == 2:
            proc.send_signal(signal.SIGTERM)
            break
    output = proc.communicate(timeout=600)[0]
    checkpoint = os.path.join(cwd, "runs", "resumed", "checkpoint.pt")
    saved = torch.load(checkpoint, weights_only=True)
    run_probe("ppd_atari", ["--resume", os.path.join("runs", "resumed")], cwd)
    restored = torch.load(os.path.join(cwd, "restored_rng.pt"), weights_only=True)
    kind = "cuda" if device_cuda else "torch"
    saved_state = saved["rng"]["cuda"][0] if device_cuda else saved["rng"]["torch"]
    restored_state = restored["cuda"][0] if device_cuda else restored["torch"]
    torch.manual_seed(1)  # what a resumed run drew from before issue #40: its generator seeded again
    reseeded = torch.cuda.get_rng_state() if device_cuda else torch.get_rng_state()
    result = {
        "exit_code_on_sigterm": proc.returncode,
        "interrupted_at_step": saved["global_step"],
        "checkpoint_device": saved.get("device"),
        "generator": kind,
        "checkpoint_has_cuda_state": saved["rng"].get("cuda") is not None,
        "restored_is_saved": bool(torch.equal(saved_state, restored_state)),
        "saved_differs_from_reseeded": not torch.equal(saved_state, reseeded),
    }
    result["continues"] = (
        result["restored_is_saved"]
        and result["saved_differs_from_reseeded"]
        and proc.returncode == 128 + signal.SIGTERM
    )
    if not result["continues"]:
        result["output"] = output[-2000:]
    print(
        f"interrupt and resume: the {kind} generator {'continues' if result['continues'] else 'DOES NOT continue'}",
        flush=True,
    )
    return result


def evaluate_on_cpu(work: str) -> dict:
    """Step 5: the PPD Atari student trained on the device, evaluated on the CPU."""
    checkpoint = os.path.join(work, "device", "runs", "ppd_atari", "checkpoint.pt")
    out = os.path.join(work, "cpu_evaluation.json")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "evaluate.py"),
            "--checkpoint",
            checkpoint,
            "--no-cuda",
            "--episodes",
            "2",
            "--num-envs",
            "2",
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    if proc.returncode != 0:
        return {"ok": False, "error": proc.stderr[-2000:]}
    with open(out) as f:
        record = json.load(f)
    result = {
        "ok": True,
        "checkpoint_device": torch.load(checkpoint, weights_only=True).get("device"),
        "ran_on": record["ran_on"].get("device"),
        "episodes": len(record["evaluation"]["returns"]),
        "mean": record["evaluation"]["mean"],
    }
    print(f"evaluated on the CPU: {result['episodes']} episodes, mean return {result['mean']:.2f}", flush=True)
    return result


def throughput(work: str, args: Args, cuda: bool) -> list:
    """Step 6: steps/s (after the first update) of PPD onto the larger student, with the shipped teachers."""
    rows = []
    cwd = os.path.join(work, "throughput")
    os.makedirs(cwd, exist_ok=True)
    for env_id, script in (("Pong-v5", "ppd_atari.py"), ("Hopper-v4", "ppd_mujoco.py")):
        teacher = os.path.join(ROOT, "teachers", f"{env_id}__1.pt")
        # the paper's rollout (18 envs x 64 steps) on a GPU; a CPU-only check keeps it short
        rollout = (
            ["--num-envs", "18", "--num-steps", "64"]
            if cuda
            else ["--num-envs", "2", "--num-steps", "32", "--minibatch-size", "64"]
        )
        batch = int(rollout[1]) * int(rollout[3])
        plans = [
            ("cuda" if cuda else "cpu", flag, args.throughput_updates if cuda else 2)
            for flag in ("--no-bf16", "--bf16")
        ]
        if cuda:
            plans.append(
                ("cpu", "--no-bf16", args.cpu_pong_updates if env_id == "Pong-v5" else args.throughput_updates)
            )
        for device, flag, updates in plans:
            if updates < 2:
                continue
            flags = [
                "--env-id",
                env_id,
                "--student",
                "larger",
                "--teacher-path",
                teacher,
                *rollout,
                flag,
                "--total-timesteps",
                updates * batch,
                "--cuda" if device == "cuda" else "--no-cuda",
            ]
            sps = measured_sps(script, flags, cwd)
            rows.append(
                {
                    "env_id": env_id,
                    "student": "larger",
                    "device": device,
                    "bf16": flag == "--bf16",
                    "num_envs": int(rollout[1]),
                    "updates": updates,
                    "steps_per_second": round(sps, 1),
                }
            )
            print(
                f"{env_id} PPD larger, {device}{', bf16' if flag == '--bf16' else ''}: {sps:,.1f} steps/s", flush=True
            )
    return rows


def report(results: dict) -> str:
    w = results["wheel"]
    lines = [
        f"## GPU check ({results['date']})",
        "",
        f"torch {w['torch']} (CUDA {w['torch_cuda']}), device: {w['device_name'] or 'cpu'}; {w['verdict']}",
        "",
        "| script | syncs on the device (per vector step) | where | first-update losses, device vs CPU |",
        "|---|---|---|---|",
    ]
    for script, row in results["tiny_runs"].items():
        where = ", ".join(f"{k} x{v}" for k, v in sorted(row["syncs"].items(), key=lambda kv: -kv[1])[:4]) or "-"
        compared = (
            "-" if row["max_relative_loss_difference"] is None else f"within {row['max_relative_loss_difference']:.1e}"
        )
        lines.append(f"| {script} | {row['syncs_total']} ({row['syncs_per_vector_step']}) | {where} | {compared} |")
    r = results["resume"]
    lines += [
        "",
        f"Interrupt and resume: exit {r['exit_code_on_sigterm']} at step {r['interrupted_at_step']}; the "
        f"{r['generator']} generator restored is the saved one: {r['restored_is_saved']}; it differs from a "
        f"re-seeded one: {r['saved_differs_from_reseeded']}.",
        "",
    ]
    e = results["evaluate_on_cpu"]
    lines += [
        f"A checkpoint trained on {e.get('checkpoint_device')} evaluated on the CPU: "
        + (f"{e['episodes']} episodes, mean return {e['mean']:.2f}." if e["ok"] else f"FAILED: {e['error']}"),
        "",
        "| env | student | device | bf16 | envs | steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["throughput"]:
        lines.append(
            f"| {row['env_id']} | {row['student']} | {row['device']} | {row['bf16']} | {row['num_envs']} | "
            f"{row['steps_per_second']:,.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = tyro.cli(Args)
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="gpu_check_"))
    os.makedirs(work, exist_ok=True)
    started = time.time()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "wheel": wheel()}
    cuda = results["wheel"]["cuda_available"]
    print(f"torch {torch.__version__}: {results['wheel']['verdict']}", flush=True)
    try:
        results["tiny_runs"] = tiny_runs(work, cuda)
        results["resume"] = interrupt_and_resume(work, cuda)
        results["evaluate_on_cpu"] = evaluate_on_cpu(work)
        results["throughput"] = throughput(work, args, cuda)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = round(time.time() - started, 1)
    results["report"] = report(results)
    tmp = f"{args.out}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, args.out)
    print(results["report"] + f"\nwrote {args.out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        print(json.dumps(probe(json.loads(sys.argv[2]))))
    else:
        main()
