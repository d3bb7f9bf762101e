"""Expand the paper's grid of runs into the project's own commands, and run it here or on SLURM.

The grid (paper section 3, A.2, A.3): a PPO teacher per env and seed, then PPD, student-distill and
teacher-distill onto smaller, same and larger students from each teacher; imperfect teachers (sigma 0.05,
larger students, the paper's Atari and Procgen subsets by default); and a lambda sweep for PPD (larger
students, the Atari subset by default). A distillation run depends on its teacher's checkpoint.

    python tools/sweep.py --dry-run                                  # the whole grid, in dependency order
    python tools/sweep.py --suites mujoco --seeds 1 --workers 2      # run a subset here
    python tools/sweep.py --suites atari --workers 4 --cuda-devices 0 1 2 3   # one GPU per worker on a 4-GPU box
    python tools/sweep.py --mode slurm --suites atari --gpus 1 --setup "source .venv/bin/activate"
"""

import importlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

import tyro
from entry import UsageError, plural, run_main  # noqa: E402  (tools/ is sys.path[0] when a tool runs)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_ENVS = {
    "atari": (
        "Atlantis-v5",
        "BeamRider-v5",
        "CrazyClimber-v5",
        "DemonAttack-v5",
        "Enduro-v5",
        "Freeway-v5",
        "MsPacman-v5",
        "Pong-v5",
        "Qbert-v5",
        "Seaquest-v5",
        "Zaxxon-v5",
    ),
    "mujoco": ("Ant-v4", "HalfCheetah-v4", "Hopper-v4", "Humanoid-v4", "Swimmer-v4"),
    "procgen": ("coinrun", "jumper", "miner", "ninja"),
}
IMPERFECT_ENVS = ("BeamRider-v5", "CrazyClimber-v5", "MsPacman-v5", "Qbert-v5", "miner", "jumper", "coinrun", "ninja")
LAMBDA_ENVS = ("BeamRider-v5", "CrazyClimber-v5", "MsPacman-v5", "Qbert-v5")
METHOD_SCRIPTS = {
    "ppd": "ppd_{suite}.py",
    "student_distill": "student_distill.py",
    "teacher_distill": "teacher_distill.py",
    "ppd_stopgrad": "ppd_{suite}.py",
}
# A method variant beyond the paper: the PPD script with its flag; its runs are named and reported as their own method.
METHOD_FLAGS = {"ppd_stopgrad": ["--distill-ratio", "stopgrad"]}


@dataclass
class Args:
    mode: Literal["local", "slurm"] = "local"
    """run here with a pool of workers, or submit SLURM job arrays"""
    dry_run: bool = False
    """print what the call would do and stop: the commands in dependency order, '# skip (done): NAME' for the
    runs it would skip (finished, or a teacher whose file exists, as the shipped ones)"""
    suites: tuple[str, ...] = ("atari", "mujoco", "procgen")
    """suites of the grid"""
    envs: tuple[str, ...] = ()
    """only these envs, as the scripts accept them (Hopper or Hopper-v4, Pong or Pong-v5, coinrun); default: the
    paper's envs of each suite"""
    seeds: tuple[int, ...] = (100, 200, 300, 400, 500)
    """seeds (A.2: 100 to 500); a student uses the teacher of its own seed, so these train their own teachers:
    the shipped teachers are seed 1 (--seeds 1 distils from them)"""
    methods: tuple[str, ...] = ("ppd", "student_distill", "teacher_distill")
    """distillation methods: ppd, student_distill, teacher_distill (the paper's), ppd_stopgrad (PPD with
    --distill-ratio stopgrad, beyond the paper)"""
    students: tuple[str, ...] = ("smaller", "same", "larger")
    """student sizes"""
    main: bool = True
    """the main grid (Table 1/5: every method onto every student size); --no-main keeps only the imperfect-teacher
    and lambda runs"""
    imperfect: bool = True
    """add the imperfect-teacher runs (sigma, larger students, the paper's subset of envs)"""
    imperfect_student: Literal["smaller", "same", "larger"] = "larger"
    """student of the imperfect-teacher runs (the paper's: larger; same for pixels on a CPU)"""
    sigma: float = 0.05
    """teacher corruption of the imperfect-teacher runs"""
    imperfect_envs: Annotated[
        Optional[tuple[str, ...]],
        tyro.conf.arg(
            metavar="STR [STR ...]", help_behavior_hint="(default: the paper's four Atari and four Procgen envs)"
        ),
    ] = None
    """envs of the imperfect-teacher runs"""
    lambdas: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    """PPD lambda sweep (larger students); lambda 1 is the main grid's; () for none"""
    lambda_envs: Annotated[
        Optional[tuple[str, ...]],
        tyro.conf.arg(metavar="STR [STR ...]", help_behavior_hint="(default: the paper's four Atari envs)"),
    ] = None
    """envs of the lambda sweep"""
    teacher_flags: str = ""
    """extra flags for every teacher command, e.g. "--total-timesteps 1000000" """
    distill_flags: str = ""
    """extra flags for every distillation command"""
    ppd_flags: str = ""
    """extra flags for the PPD commands only (PPO's flags, e.g. --minibatch-size, which the baselines lack)"""
    runs_dir: str = "runs"
    """run folders (each run gets runs/{run name}/ with its eval.json)"""
    teachers_dir: str = "teachers"
    """where the teachers are written and read"""
    logs_dir: str = "sweep_logs"
    """one log file per run (local mode) or per array task (SLURM)"""
    python: str = sys.executable
    """the Python that runs the scripts"""
    workers: int = 2
    """local mode: runs at a time"""
    cuda_devices: tuple[str, ...] = ()
    """local mode: the GPUs of the workers (e.g. 0 1 2 3): each run gets one through CUDA_VISIBLE_DEVICES, a free
    one when it starts (workers beyond the GPUs share them, round-robin); default: the runs see every GPU, so all
    use the first. SLURM gives each task its own with --gpus"""
    done_dirs: tuple[str, ...] = ()
    """a run whose eval.json is in {folder}/{run name}/ of one of these folders is done too (e.g. results/runs,
    where finished runs are committed): it is skipped"""
    on_done: str = ""
    """local mode: a shell command run after each run that finishes, with {name} and {run_dir} filled in (e.g. copy
    its data to results/ and commit it)"""
    stop_after_minutes: float = 0.0
    """local mode: stop after this many minutes (0: no limit); the running runs get SIGTERM, write their checkpoint
    and resume on the next call, and no new run starts. SIGTERM or Ctrl-C to the sweep does the same"""
    partition: Annotated[
        Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: the cluster's default partition)")
    ] = None
    """SLURM partition"""
    account: Annotated[Optional[str], tyro.conf.arg(metavar="STR", help_behavior_hint="(default: none)")] = None
    """SLURM account"""
    gpus: int = 0
    """SLURM GPUs per task (0: CPU-only jobs)"""
    cpus: int = 2
    """SLURM CPUs per task"""
    mem: str = "8G"
    """SLURM memory per task"""
    time: str = "24:00:00"
    """SLURM time limit per task"""
    setup: tuple[str, ...] = ()
    """lines run at the start of every SLURM task (environment activation, module loads)"""
    slurm_dir: str = "slurm"
    """where the sbatch scripts and command lists are written"""


@dataclass
class Run:
    name: str
    command: list[str]
    teacher: Optional[str] = None  # the name of the run this one depends on
    teacher_file: Optional[str] = None  # a teacher run's output: {teachers_dir}/{env_id}__{seed}.pt

    def run_dir(self, args: Args) -> str:
        return os.path.join(args.runs_dir, self.name)


def canonical_env(env_id: str) -> tuple[str, str]:
    """(the scripts' canonical id, its suite) for an id as the scripts accept it: the baselines' canonical_env_id,
    which applies every suite's rule, is the truth."""
    sys.path.insert(0, ROOT)
    script = importlib.import_module("student_distill")
    try:
        suite, canonical = script.canonical_env_id(env_id)
    except script.UsageError as e:
        raise UsageError(str(e)) from None
    return canonical, suite


def expand(args: Args) -> list[Run]:
    """The grid, teachers first: every run's teacher comes before it."""
    for name, allowed in (
        ("suites", PAPER_ENVS),
        ("methods", METHOD_SCRIPTS),
        ("students", ("smaller", "same", "larger")),
    ):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            raise UsageError(f"unknown --{name} {', '.join(sorted(unknown))}; choose from {', '.join(allowed)}")
    suite_of = {env: suite for suite, envs in PAPER_ENVS.items() for env in envs}
    if args.envs:
        suite_of = dict(canonical_env(e) for e in args.envs)
        outside = [f"{e} ({s})" for e, s in suite_of.items() if s not in args.suites]
        if outside:
            raise UsageError(
                f"--envs {', '.join(outside)} not in --suites {' '.join(args.suites)}; add the suite or drop the env"
            )
    envs = [e for e, s in suite_of.items() if s in args.suites]
    canonical = lambda ids: [canonical_env(e)[0] for e in ids]  # noqa: E731
    imperfect_envs = IMPERFECT_ENVS if args.imperfect_envs is None else canonical(args.imperfect_envs)
    lambda_envs = LAMBDA_ENVS if args.lambda_envs is None else canonical(args.lambda_envs)
    teachers, students = [], []
    for env_id in envs:
        suite = suite_of[env_id]
        for seed in args.seeds:
            teacher = f"{env_id}__teacher__{seed}"
            teachers.append(
                Run(
                    teacher,
                    [
                        f"ppo_teacher_{suite}.py",
                        "--env-id",
                        env_id,
                        "--seed",
                        str(seed),
                        "--teachers-dir",
                        args.teachers_dir,
                        *shlex.split(args.teacher_flags),
                    ],
                    teacher_file=os.path.join(args.teachers_dir, f"{env_id}__{seed}.pt"),
                )
            )
            variants = [(m, size, 0.0, 1.0) for m in args.methods for size in args.students if args.main]
            if args.imperfect and env_id in imperfect_envs and args.imperfect_student in args.students:
                variants += [(m, args.imperfect_student, args.sigma, 1.0) for m in args.methods]
            if "ppd" in args.methods and env_id in lambda_envs and "larger" in args.students:
                variants += [("ppd", "larger", 0.0, lam) for lam in args.lambdas if lam != 1.0]
            for method, size, sigma, lam in variants:
                name = (
                    f"{env_id}__{method}__{size}__{seed}"
                    + (f"__sigma{sigma}" if sigma else "")
                    + (f"__lambda{lam}" if lam != 1.0 else "")
                )
                command = [
                    METHOD_SCRIPTS[method].format(suite=suite),
                    "--env-id",
                    env_id,
                    "--seed",
                    str(seed),
                    "--student",
                    size,
                    "--teacher-path",
                    os.path.join(args.teachers_dir, f"{env_id}__{seed}.pt"),
                ]
                command += ["--teacher-corruption-sigma", str(sigma)] if sigma else []
                command += ["--distill-lambda", str(lam)] if lam != 1.0 else []
                command += METHOD_FLAGS.get(method, [])
                command += shlex.split(args.distill_flags) + (
                    shlex.split(args.ppd_flags) if method.startswith("ppd") else []
                )
                students.append(Run(name, command, teacher))
    runs = teachers + students
    defaults = Args()
    lambda_runs = any("--distill-lambda" in run.command for run in students)
    if not lambda_runs and any(lam != 1.0 for lam in args.lambdas) and args.lambdas != defaults.lambdas:
        print(
            f"note: --lambdas {' '.join(map(str, args.lambdas))} gives no runs: the lambda sweep is PPD onto larger "
            f"students on --lambda-envs ({' '.join(lambda_envs)}), and this sweep has none of them; name its envs "
            f"with --lambda-envs",
            file=sys.stderr,
        )
    sigma_runs = any("--teacher-corruption-sigma" in run.command for run in students)
    if not sigma_runs and args.imperfect and args.sigma != defaults.sigma:
        print(
            f"note: --sigma {args.sigma} gives no runs: the imperfect teachers are larger students on "
            f"--imperfect-envs ({' '.join(imperfect_envs)}), and this sweep has none of them; name its envs with "
            f"--imperfect-envs",
            file=sys.stderr,
        )
    if not students and not teachers:
        raise UsageError("the filters select no runs (check --suites, --envs, --seeds, --methods, --students)")
    for run in runs:
        run.command = [
            args.python,
            os.path.join(ROOT, run.command[0]),
            *run.command[1:],
            "--run-name",
            run.name,
            "--runs-dir",
            args.runs_dir,
        ]
    return runs


def is_done(run: Run, args: Args) -> bool:
    """A run with its eval.json; a teacher also when its file and .json exist (shipped or trained before): it is
    not trained again (its script would refuse to overwrite it) and its students may run."""
    if any(os.path.isfile(os.path.join(folder, run.name, "eval.json")) for folder in (args.runs_dir, *args.done_dirs)):
        return True
    return run.teacher_file is not None and all(
        os.path.isfile(p) for p in (run.teacher_file, run.teacher_file[:-3] + ".json")
    )


def skipped(run: Run, args: Args) -> bool:
    """Whether the real call leaves this run out: local mode every finished run; SLURM mode a finished teacher,
    and a distillation run whose eval.json is in --runs-dir (its array task exits at once)."""
    if args.mode == "slurm" and run.teacher is not None:
        return os.path.isfile(os.path.join(run.run_dir(args), "eval.json"))
    return is_done(run, args)


def command_of(run: Run, args: Args) -> list[str]:
    """The run's command; a run with a checkpoint (stopped earlier) continues from it."""
    checkpoint = os.path.join(run.run_dir(args), "checkpoint.pt")
    return run.command + (["--resume", checkpoint] if os.path.isfile(checkpoint) else [])


def run_local(runs: list[Run], args: Args) -> tuple[list[str], list[str]]:
    """Teachers, then the runs whose teacher succeeded. Returns the failures (name: reason) and the runs left
    for the next call (stopped by the time limit or a signal: resumable, or not started)."""
    os.makedirs(args.logs_dir, exist_ok=True)
    failed: dict[str, str] = {}
    left: list[str] = []
    # Share the cores between the workers: torch threads that oversubscribe them run ~10x slower.
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.workers)))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    stop = threading.Event()
    deadline = time.time() + 60 * args.stop_after_minutes if args.stop_after_minutes > 0 else float("inf")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    free_devices = queue.Queue()  # a worker's GPU, taken when its run starts and given back when it ends
    for i in range(args.workers if args.cuda_devices else 0):
        free_devices.put(args.cuda_devices[i % len(args.cuda_devices)])

    def launch(run: Run) -> None:
        if run.teacher in failed:
            failed[run.name] = f"its teacher {run.teacher} failed"
            return
        if is_done(run, args):
            print(f"skip (done): {run.name}", flush=True)
            return
        if stop.is_set() or time.time() >= deadline:
            left.append(f"{run.name} (not started)")
            return
        command = command_of(run, args)
        checkpoint = os.path.join(run.run_dir(args), "checkpoint.pt")
        gpu = free_devices.get() if args.cuda_devices else None
        run_env = env if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu}
        print(f"start: {run.name}" + ("" if gpu is None else f" (CUDA_VISIBLE_DEVICES={gpu})"), flush=True)
        log_path = os.path.join(args.logs_dir, f"{run.name}.log")
        try:
            with open(log_path, "a") as log:  # a resumed run's log follows its first part
                # its own process group: a Ctrl-C in this terminal reaches the sweep only, which then stops it
                proc = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=run_env, start_new_session=True
                )
                while proc.poll() is None:
                    if stop.wait(timeout=2) or time.time() >= deadline:
                        proc.send_signal(signal.SIGTERM)  # it writes its checkpoint and exits with 143
                        proc.wait()
                        break
        finally:
            if gpu is not None:
                free_devices.put(gpu)
        code = proc.returncode
        if code == 128 + signal.SIGTERM and (stop.is_set() or time.time() >= deadline):
            left.append(f"{run.name} (stopped; resumes from {checkpoint})")
            print(f"stopped: {run.name}", flush=True)
            return
        if code != 0:
            failed[run.name] = f"exit code {code}, log {log_path}"
        elif args.on_done:
            hook = subprocess.run(args.on_done.format(name=run.name, run_dir=run.run_dir(args)), shell=True)
            if hook.returncode != 0:
                failed[run.name] = f"--on-done exited with {hook.returncode}"
        print(f"{'FAILED' if run.name in failed else 'done'}: {run.name}", flush=True)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(launch, [r for r in runs if r.teacher is None]))
    unfinished_teachers = {entry.split(" ")[0] for entry in left}
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(launch, [r for r in runs if r.teacher is not None and r.teacher not in unfinished_teachers]))
    left += [f"{r.name} (waits for its teacher)" for r in runs if r.teacher in unfinished_teachers]
    return [f"{name}: {reason}" for name, reason in failed.items()], left


def sbatch_script(name: str, commands_file: str, count: int, args: Args) -> str:
    options = [
        f"--job-name=ppd-{name}",
        f"--array=0-{count - 1}",
        f"--cpus-per-task={args.cpus}",
        f"--mem={args.mem}",
        f"--time={args.time}",
        "--requeue",
        f"--output={os.path.abspath(args.logs_dir)}/{name}_%A_%a.log",
    ]
    options += [f"--partition={args.partition}"] if args.partition else []
    options += [f"--account={args.account}"] if args.account else []
    options += [f"--gres=gpu:{args.gpus}"] if args.gpus else []
    lines = [
        "#!/bin/bash",
        *[f"#SBATCH {o}" for o in options],
        "set -eo pipefail",
        f"cd {shlex.quote(os.getcwd())}",
        *args.setup,
        f'line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(os.path.abspath(commands_file))})',
        "run_dir=${line%%$'\\t'*}",
        "command=${line#*$'\\t'}",
        'if [ -f "$run_dir/eval.json" ]; then echo "already done: $run_dir"; exit 0; fi',
        "# a requeued (preempted) task continues from its checkpoint instead of starting over",
        'if [ -f "$run_dir/checkpoint.pt" ]; then command="$command --resume $run_dir/checkpoint.pt"; fi',
        'echo "$command"',
        'eval "$command"',
    ]
    return "\n".join(lines) + "\n"


def submit_slurm(runs: list[Run], args: Args) -> list[str]:
    """One job array for the teachers, one for the distillation runs, afterok on the teachers' array."""
    os.makedirs(args.slurm_dir, exist_ok=True)
    os.makedirs(args.logs_dir, exist_ok=True)
    job_ids = []
    for run in runs:
        if run.teacher_file and is_done(run, args):
            print(f"skip (teacher exists): {run.teacher_file}", flush=True)
    for stage, stage_runs in (
        ("teachers", [r for r in runs if r.teacher is None and not is_done(r, args)]),
        ("students", [r for r in runs if r.teacher is not None]),
    ):
        if not stage_runs:
            continue
        commands_file = os.path.join(args.slurm_dir, f"{stage}.txt")
        with open(commands_file, "w") as f:
            f.writelines(f"{r.run_dir(args)}\t{shlex.join(r.command)}\n" for r in stage_runs)
        script = os.path.join(args.slurm_dir, f"{stage}.sbatch")
        with open(script, "w") as f:
            f.write(sbatch_script(stage, commands_file, len(stage_runs), args))
        dependency = [f"--dependency=afterok:{job_ids[0]}"] if job_ids and stage == "students" else []
        proc = subprocess.run(["sbatch", "--parsable", *dependency, script], capture_output=True, text=True)
        if proc.returncode != 0:
            raise UsageError(f"sbatch failed for {script}: {proc.stderr.strip()}")
        job_ids.append(proc.stdout.strip().split(";")[0])
        print(f"{stage}: {plural(len(stage_runs), 'run')}, job array {job_ids[-1]}", flush=True)
    return job_ids


def main() -> None:
    args = tyro.cli(Args)
    try:
        args.cuda_devices = tuple(d.strip() for item in args.cuda_devices for d in item.split(",") if d.strip())
        if args.cuda_devices and args.mode == "slurm":
            raise UsageError("--cuda-devices is for local mode; on SLURM, --gpus N gives each task its own GPUs")
        runs = expand(args)
        if args.dry_run:  # what the call would do, skips included
            skips = 0
            for run in runs:
                skip = skipped(run, args)
                skips += skip
                print(f"# skip (done): {run.name}" if skip else shlex.join(command_of(run, args)))
            teachers = sum(r.teacher is None for r in runs)
            print(
                f"# {plural(len(runs), 'run')}: {plural(teachers, 'teacher')}, "
                f"{plural(len(runs) - teachers, 'distillation run')}; {skips} skipped"
            )
            return
        if args.mode == "slurm":
            submit_slurm(runs, args)
            return
        failures, left = run_local(runs, args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if failures:
        print(f"{len(failures)} run(s) failed:\n" + "\n".join(f"  {f}" for f in failures), file=sys.stderr)
        sys.exit(1)
    if left:
        print(
            f"stopped with {len(left)} run(s) left; the same command continues them:\n"
            + "\n".join(f"  {x}" for x in left)
        )
        sys.exit(3)
    print(f"all {plural(len(runs), 'run')} done")


if __name__ == "__main__":
    run_main(main)
