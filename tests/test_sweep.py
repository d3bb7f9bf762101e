"""tools/sweep.py: the grid, a local two-stage sweep, and a real single-node SLURM."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, read_json, run_main, run_script

sys.path.insert(0, os.path.join(ROOT, "tools"))
import sweep  # noqa: E402

TINY_TEACHER = (
    "--num-envs 2 --num-steps 64 --minibatch-size 64 --hidden-sizes 16 16 --total-timesteps 256 --eval-episodes 1 "
    "--eval-envs 1"
)
TINY_STUDENT = "--num-envs 2 --num-steps 8 --total-timesteps 64 --eval-episodes 1 --eval-envs 1"
TINY_GRID = [
    "--suites",
    "mujoco",
    "--envs",
    "Hopper-v4",
    "--seeds",
    "1",
    "--methods",
    "ppd",
    "student_distill",
    "--students",
    "smaller",
    "--no-imperfect",
    "--lambdas",
]


def order_is_valid(runs) -> bool:
    seen = set()
    for run in runs:
        if run.teacher is not None and run.teacher not in seen:
            return False
        seen.add(run.name)
    return True


def test_full_paper_grid():
    runs = sweep.expand(sweep.Args())
    teachers = [r for r in runs if r.teacher is None]
    # 20 envs x 5 seeds teachers; 9 students each; imperfect: 8 envs x 3 methods x 5 seeds; lambda: 4 x 3 x 5
    assert len(teachers) == 100 and len(runs) == 100 + 900 + 120 + 60
    assert order_is_valid(runs) and len({r.name for r in runs}) == len(runs)
    corrupted = [r for r in runs if "--teacher-corruption-sigma" in r.command]
    assert len(corrupted) == 120 and all("--student" in r.command and "larger" in r.command for r in corrupted)
    ppd_hopper = next(r for r in runs if r.name == "Hopper-v4__ppd__larger__300")
    assert ppd_hopper.command[1].endswith("ppd_mujoco.py") and ppd_hopper.teacher == "Hopper-v4__teacher__300"
    assert "teachers/Hopper-v4__300.pt" in ppd_hopper.command


def test_filtered_grid():
    args = sweep.Args(suites=("atari",), seeds=(1, 2), imperfect=False, lambdas=())
    runs = sweep.expand(args)
    assert len(runs) == 11 * 2 * (1 + 9) and order_is_valid(runs)
    runs = sweep.expand(sweep.Args(envs=("BeamRider-v5",), seeds=(7,)))
    assert len(runs) == 1 + 9 + 3 + 3  # teacher, main grid, imperfect teachers, lambdas 0.5, 2, 5
    assert sorted(r.name for r in runs if "lambda" in r.name) == [
        "BeamRider-v5__ppd__larger__7__lambda0.5",
        "BeamRider-v5__ppd__larger__7__lambda2.0",
        "BeamRider-v5__ppd__larger__7__lambda5.0",
    ]
    # results/run_grid.sh: imperfect teachers on both Mujoco envs, the lambda sweep on one
    runs = sweep.expand(
        sweep.Args(
            suites=("mujoco",),
            envs=("Hopper-v4", "HalfCheetah-v4"),
            seeds=(1, 2),
            imperfect_envs=("Hopper-v4", "HalfCheetah-v4"),
            lambda_envs=("HalfCheetah-v4",),
        )
    )
    assert len(runs) == 4 * (1 + 9 + 3) + 2 * 3 and order_is_valid(runs)
    assert {r.name.split("__")[0] for r in runs if "lambda" in r.name} == {"HalfCheetah-v4"}
    sigma = [r for r in runs if "__sigma0.05" in r.name]
    assert len(sigma) == 12 and all(
        r.command[r.command.index("--teacher-corruption-sigma") + 1] == "0.05" for r in sigma
    )
    # its two phases (main: Tables 1, 5 and 2; lambda: the sweep) together are that grid, each run once
    grid = dict(suites=("mujoco",), envs=("Hopper-v4", "HalfCheetah-v4"), seeds=(1, 2))
    main = sweep.expand(sweep.Args(**grid, lambdas=(), imperfect_envs=("Hopper-v4", "HalfCheetah-v4")))
    lam = sweep.expand(
        sweep.Args(
            **grid,
            methods=("ppd",),
            students=("larger",),
            imperfect=False,
            lambdas=(0.5, 2.0, 5.0),
            lambda_envs=("HalfCheetah-v4",),
        )
    )
    assert not any("lambda" in r.name for r in main) and len(main) == 4 * (1 + 9 + 3)
    assert {r.name for r in main} | {r.name for r in lam} == {r.name for r in runs}


def test_procgen_imperfect_teachers_onto_same_size_students_alone():
    """results/run_grid.sh's procgen_sigma phase (issue #38 part 3): the sigma runs onto same-size students (the CPU
    cannot train the paper's larger IMPALA students), without the main grid's runs, which phase procgen makes."""
    games = ("coinrun", "jumper", "miner", "ninja")
    runs = sweep.expand(
        sweep.Args(
            suites=("procgen",),
            envs=games,
            seeds=(1, 2),
            main=False,
            students=("same",),
            imperfect_student="same",
            imperfect_envs=games,
            lambdas=(),
        )
    )
    students = [r for r in runs if r.teacher]
    assert len(students) == 4 * 2 * 3 and all(r.name.endswith("__sigma0.05") for r in students)
    for run in students:
        assert run.command[run.command.index("--student") + 1] == "same" and "__same__" in run.name
        assert run.command[run.command.index("--teacher-corruption-sigma") + 1] == "0.05"
    main = sweep.expand(
        sweep.Args(
            suites=("procgen",), envs=games, seeds=(1,), students=("smaller", "same"), imperfect=False, lambdas=()
        )
    )
    assert len([r for r in main if r.teacher]) == 4 * 3 * 2  # the default keeps the main grid
    assert not [
        r
        for r in sweep.expand(
            sweep.Args(
                suites=("procgen",), envs=games, seeds=(1,), students=("same",), imperfect_envs=games, lambdas=()
            )
        )
        if "sigma" in r.name
    ]


def test_stopgrad_variant_runs_are_ppd_with_its_flag():
    runs = sweep.expand(
        sweep.Args(
            suites=("mujoco",),
            envs=("Hopper-v4",),
            seeds=(1,),
            methods=("ppd_stopgrad",),
            imperfect_envs=("Hopper-v4",),
            ppd_flags="--minibatch-size 256",
        )
    )
    students = [r for r in runs if r.teacher]
    assert sorted(r.name for r in students) == [
        "Hopper-v4__ppd_stopgrad__larger__1",
        "Hopper-v4__ppd_stopgrad__larger__1__sigma0.05",
        "Hopper-v4__ppd_stopgrad__same__1",
        "Hopper-v4__ppd_stopgrad__smaller__1",
    ]  # no lambda sweep
    for run in students:
        assert run.command[1].endswith("ppd_mujoco.py")
        assert run.command[run.command.index("--distill-ratio") + 1] == "stopgrad"
        assert run.command[run.command.index("--minibatch-size") + 1] == "256"
    with pytest.raises(sweep.UsageError, match="unknown --methods ppd_detached"):
        sweep.expand(sweep.Args(suites=("mujoco",), methods=("ppd_detached",)))


def run_sweep(argv, cwd):
    return run_main("tools/sweep.py", argv, cwd, check=False)


def test_local_sweep_runs_skips_and_reports_failures(tmp_path):
    flags = [
        f"--teacher-flags={TINY_TEACHER}",
        f"--distill-flags={TINY_STUDENT}",
        "--ppd-flags=--minibatch-size 16",
        "--workers",
        "2",
    ]
    proc = run_sweep([*TINY_GRID, *flags], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("Hopper-v4__teacher__1", "Hopper-v4__ppd__smaller__1", "Hopper-v4__student_distill__smaller__1"):
        assert read_json(tmp_path / "runs" / name / "eval.json")["env_id"] == "Hopper-v4"
        assert (tmp_path / "sweep_logs" / f"{name}.log").stat().st_size > 0
    assert (tmp_path / "teachers" / "Hopper-v4__1.pt").is_file()

    again = run_sweep([*TINY_GRID, *flags], tmp_path)
    assert again.returncode == 0 and again.stdout.count("skip (done)") == 3 and "start:" not in again.stdout

    broken = run_sweep(
        [*TINY_GRID, "--teacher-flags=--num-envs 0", "--runs-dir", "broken", "--teachers-dir", "broken_teachers"],
        tmp_path,
    )
    assert broken.returncode == 1
    assert "3 run(s) failed" in broken.stderr and "Hopper-v4__teacher__1: exit code 2" in broken.stderr
    assert "Hopper-v4__ppd__smaller__1: its teacher Hopper-v4__teacher__1 failed" in broken.stderr


def test_local_workers_get_a_gpu_each(tmp_path):
    """--cuda-devices 0,1: each run sees one GPU (CUDA_VISIBLE_DEVICES, recorded in its eval.json); the two teachers
    that start together get different ones, and a device is given back for the runs after them."""
    grid = [
        "--suites",
        "mujoco",
        "--envs",
        "Hopper",
        "--seeds",
        "1",
        "2",
        "--methods",
        "ppd",
        "--students",
        "smaller",
        "--no-imperfect",
        "--lambdas",
    ]
    flags = [
        f"--teacher-flags={TINY_TEACHER}",
        f"--distill-flags={TINY_STUDENT}",
        "--ppd-flags=--minibatch-size 16",
        "--workers",
        "2",
    ]
    proc = run_sweep([*grid, *flags, "--cuda-devices", "0,1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = {}
    for name in (
        "Hopper-v4__teacher__1",
        "Hopper-v4__teacher__2",
        "Hopper-v4__ppd__smaller__1",
        "Hopper-v4__ppd__smaller__2",
    ):
        seen[name] = read_json(tmp_path / "runs" / name / "eval.json")["ran_on"]["cuda_visible_devices"]
        assert f"start: {name} (CUDA_VISIBLE_DEVICES={seen[name]})" in proc.stdout
    assert {seen["Hopper-v4__teacher__1"], seen["Hopper-v4__teacher__2"]} == {"0", "1"}
    assert set(seen.values()) == {"0", "1"}
    refused = run_sweep([*grid, "--mode", "slurm", "--cuda-devices", "0"], tmp_path)
    assert refused.returncode == 2 and refused.stderr == (
        "error: --cuda-devices is for local mode; on SLURM, --gpus N gives each task its own GPUs\n"
    )


@pytest.fixture
def slurm(tmp_path):
    """A real single-node SLURM (slurmctld, slurmd, munge on localhost) configured in a temporary folder."""
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        pytest.fail(
            "SLURM is not installed: .ci/run installs Debian's slurm-wlm and munge (apt-get), as this test needs"
        )
    # munge: started here unless one runs already, and then stopped again at the end, by its PID
    started_munged = subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0
    if started_munged:
        subprocess.run(
            "mkdir -p /run/munge && chown munge:munge /run/munge && munged --force",
            shell=True,
            check=True,
            capture_output=True,
        )
    host, conf = socket.gethostname(), tmp_path / "slurm"
    (conf / "state").mkdir(parents=True)
    (conf / "spool").mkdir()
    (conf / "slurm.conf").write_text(f"""ClusterName=local
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={conf}/state
SlurmdSpoolDir={conf}/spool
SlurmctldPidFile={conf}/slurmctld.pid
SlurmdPidFile={conf}/slurmd.pid
SlurmctldLogFile={conf}/slurmctld.log
SlurmdLogFile={conf}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs={os.cpu_count()} RealMemory=4096 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    env = {**os.environ, "SLURM_CONF": str(conf / "slurm.conf")}
    subprocess.run(["slurmctld", "-c"], env=env, check=True)
    subprocess.run(["slurmd", "-c"], env=env, check=True)
    for _ in range(30):
        if "idle" in subprocess.run(["sinfo"], env=env, capture_output=True, text=True).stdout:
            break
        time.sleep(1)
    yield env
    pid_files = [conf / "slurmd.pid", conf / "slurmctld.pid"] + (
        [Path("/run/munge/munged.pid")] if started_munged else []
    )
    for pid_file in pid_files:
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()])


def test_slurm_two_stage_sweep(slurm, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    flags = [
        f"--teacher-flags={TINY_TEACHER}",
        f"--distill-flags={TINY_STUDENT}",
        "--ppd-flags=--minibatch-size 16",
        "--mode",
        "slurm",
        "--cpus",
        "1",
        "--mem",
        "1G",
        "--time",
        "00:20:00",
    ]
    proc = run_script("tools/sweep.py", [*TINY_GRID, *flags], work, env=slurm, timeout=120)  # the real sbatch
    assert "teachers: 1 run, job array" in proc.stdout and "students: 2 runs, job array" in proc.stdout
    script = (work / "slurm" / "students.sbatch").read_text()
    assert "#SBATCH --array=0-1" in script and "--resume" in script and "gres" not in script
    deadline = time.time() + 600
    while time.time() < deadline:
        queue = subprocess.run(["squeue", "-h"], env=slurm, capture_output=True, text=True).stdout
        if not queue.strip():
            break
        time.sleep(3)
    teacher_eval = work / "runs" / "Hopper-v4__teacher__1" / "eval.json"
    assert teacher_eval.is_file(), list((work / "sweep_logs").iterdir())
    for name in ("Hopper-v4__ppd__smaller__1", "Hopper-v4__student_distill__smaller__1"):
        assert read_json(work / "runs" / name / "eval.json")["method"] in ("ppd", "student_distill")
    # The distillation array started only after the teacher array had succeeded.
    student_logs = [p for p in (work / "sweep_logs").iterdir() if p.name.startswith("students_")]
    assert len(student_logs) == 2
    assert min(p.stat().st_ctime for p in student_logs) >= teacher_eval.stat().st_mtime - 1


def test_an_existing_teacher_is_finished_not_retrained(tmp_path):
    """A teacher file with its .json (shipped, or trained earlier) counts as a finished teacher: its students
    run, and the teacher script is not started (it would refuse to overwrite the file anyway)."""
    os.makedirs(tmp_path / "teachers")
    for ext in (".pt", ".json"):
        shutil.copy(os.path.join(ROOT, "teachers", f"Hopper-v4__1{ext}"), tmp_path / "teachers")
    before = (tmp_path / "teachers" / "Hopper-v4__1.pt").read_bytes()
    proc = run_sweep(
        [*TINY_GRID, "--methods", "student_distill", f"--distill-flags={TINY_STUDENT}", "--workers", "1"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "skip (done): Hopper-v4__teacher__1" in proc.stdout and "start: Hopper-v4__teacher__1" not in proc.stdout
    assert not (tmp_path / "runs" / "Hopper-v4__teacher__1").exists()
    student = read_json(tmp_path / "runs" / "Hopper-v4__student_distill__smaller__1" / "eval.json")
    assert student["teacher"]["sha256"] == read_json(tmp_path / "teachers" / "Hopper-v4__1.json")["checkpoint_sha256"]
    assert (tmp_path / "teachers" / "Hopper-v4__1.pt").read_bytes() == before


def test_env_ids_as_the_scripts_accept_them():
    runs = sweep.expand(sweep.Args(suites=("mujoco",), envs=("Hopper",), seeds=(1,), imperfect=False, lambdas=()))
    assert {r.name.split("__")[0] for r in runs} == {"Hopper-v4"} and len(runs) == 10
    assert (
        sweep.expand(sweep.Args(envs=("Pong", "coinrun"), seeds=(1,), imperfect=False, lambdas=()))[0].name
        == "Pong-v5__teacher__1"
    )
    for argv, message in (
        (["--envs", "Hoper"], "error: unknown env id 'Hoper'; did you mean Hopper-v4? "),
        (["--suites", "mujoco", "--envs", "Pong"], "error: --envs Pong-v5 (atari) not in --suites mujoco; "),
        (["--suites", "mujoco", "--seeds"], "error: the filters select no runs"),
    ):
        proc = run_sweep([*argv, "--dry-run"], ROOT)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), proc.stderr
        assert proc.stdout == ""
    assert "Mujoco v4 ids: Ant-v4," in run_sweep(["--envs", "Hoper", "--dry-run"], ROOT).stderr  # the valid ids too


def test_dry_run_shows_the_skips_of_the_real_call(tmp_path):
    """The shipped teacher and a finished run are skipped by a real sweep: the dry run says so in their place."""
    os.makedirs(tmp_path / "teachers")
    for ext in (".pt", ".json"):
        shutil.copy(os.path.join(ROOT, "teachers", f"Hopper-v4__1{ext}"), tmp_path / "teachers")
    os.makedirs(tmp_path / "runs" / "Hopper-v4__ppd__smaller__1")
    (tmp_path / "runs" / "Hopper-v4__ppd__smaller__1" / "eval.json").write_text("{}")
    proc = run_sweep([*TINY_GRID, "--dry-run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["# skip (done): Hopper-v4__teacher__1", "# skip (done): Hopper-v4__ppd__smaller__1"]
    assert "student_distill.py" in lines[2] and "Hopper-v4__student_distill__smaller__1" in lines[2]
    assert lines[3] == "# 3 runs: 1 teacher, 2 distillation runs; 2 skipped" and len(lines) == 4
    # SLURM mode skips the same two: the teacher is not submitted, the finished run's task exits at once
    assert run_sweep([*TINY_GRID, "--dry-run", "--mode", "slurm"], tmp_path).stdout == proc.stdout


def test_dry_run_into_a_closed_pipe_exits_quietly(tmp_path):
    """| head: the reader leaves after one line of the 1,180 commands; no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "sweep.py"), "--dry-run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(sys.executable.encode())
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and stderr == ""


def test_flags_whose_values_give_no_runs_say_so(capsys):
    """--lambdas or --sigma that select no run (their envs are not in the sweep) print one note each; when they
    do select runs, or keep their defaults, nothing is said."""
    mujoco = dict(suites=("mujoco",), envs=("Hopper-v4", "HalfCheetah-v4"), seeds=(1,))
    sweep.expand(sweep.Args(**mujoco, lambdas=(0.5, 2.0), sigma=0.1))
    notes = capsys.readouterr().err.splitlines()
    assert (
        len(notes) == 2
        and notes[0].startswith("note: --lambdas 0.5 2.0 gives no runs")
        and "--lambda-envs (BeamRider-v5 CrazyClimber-v5 MsPacman-v5 Qbert-v5)" in notes[0]
    )
    assert notes[1].startswith("note: --sigma 0.1 gives no runs") and "--imperfect-envs" in notes[1]
    runs = sweep.expand(
        sweep.Args(**mujoco, lambdas=(0.5, 2.0), lambda_envs=("Hopper-v4",), sigma=0.1, imperfect_envs=("Hopper-v4",))
    )
    assert capsys.readouterr().err == "" and sum("lambda" in r.name for r in runs) == 2
    sweep.expand(sweep.Args(**mujoco))
    assert capsys.readouterr().err == ""
