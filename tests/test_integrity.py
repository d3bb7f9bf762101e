"""Experiment integrity: no teacher overwritten, interrupted runs keep their work and resume from their own
flags, a run reports what it did, and what the docs call committed is tracked by git. Real runs, real
signals, real files."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import (
    ROOT,
    TINY,
    TINY_TEACHER_NET,
    load_script,
    one_error_line,
    read_json,
    read_scalars,
    run_script,
    sha256,
)

HOPPER = "--env-id Hopper --num-envs 4 --num-steps 64 --minibatch-size 64 --eval-episodes 1 --eval-envs 1".split()
ROLLOUT = 4 * 64


def test_a_teacher_is_never_overwritten_silently(tmp_path):
    teachers = tmp_path / "teachers"
    teachers.mkdir()
    shipped = teachers / "Hopper-v4__1.pt"
    shipped.write_bytes(open(os.path.join(ROOT, "teachers", "Hopper-v4__1.pt"), "rb").read())
    before = sha256(shipped)
    flags = [*HOPPER, "--hidden-sizes", "16", "16", "--total-timesteps", ROLLOUT, "--teachers-dir", teachers]
    proc = run_script("ppo_teacher_mujoco.py", [*flags, "--run-name", "quick"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert one_error_line(proc.stderr, proc.returncode) == (
        f"error: {shipped} exists and this run would replace it; choose another --seed "
        f"or --teachers-dir, or pass --overwrite-teacher"
    )
    assert sha256(shipped) == before and not (tmp_path / "runs").exists()  # refused before anything was written

    run_script("ppo_teacher_mujoco.py", [*flags, "--seed", "2", "--run-name", "seed2"], cwd=tmp_path)
    assert sha256(shipped) == before and (teachers / "Hopper-v4__2.pt").is_file()

    proc = run_script("ppo_teacher_mujoco.py", [*flags, "--overwrite-teacher", "--run-name", "asked"], cwd=tmp_path)
    assert sha256(shipped) != before
    written = read_json(teachers / "Hopper-v4__1.json")
    assert (
        written["checkpoint_sha256"]
        == sha256(shipped)
        == read_json(tmp_path / "runs" / "asked" / "eval.json")["checkpoint_sha256"]
    )
    assert [line for line in proc.stdout.splitlines() if line.startswith("wrote ")] == [
        f"wrote {os.path.join('runs', 'asked', 'eval.json')}",
        f"wrote {os.path.join('runs', 'asked', 'checkpoint.pt')}",
        f"wrote {shipped}",
        f"wrote {teachers / 'Hopper-v4__1.json'}",
    ]


def test_a_run_reports_what_it_did(tmp_path, teacher_runs):
    """--total-timesteps 3000 with 256-step rollouts trains 2816 steps: said at start, and in eval.json."""
    work, _ = teacher_runs["mujoco"]
    teacher = work / "teachers" / "Hopper-v4__1.pt"
    proc = run_script(
        "ppd_mujoco.py",
        [*HOPPER, "--total-timesteps", 3000, "--teacher-path", teacher, "--run-name", "honest"],
        cwd=tmp_path,
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == f"run folder: {os.path.join('runs', 'honest')}"
    recorded = read_json(teacher.with_suffix(".json"))["evaluation"]  # the opening lines name the teacher
    assert lines[1].startswith("device: cpu (") and "torch threads), torch " in lines[1]  # issue #40
    assert (
        lines[3] == f"teacher: {teacher} (recorded score {recorded['mean']:.2f} over {recorded['episodes']} episodes)"
    )
    assert lines[2] == (
        "--total-timesteps 3000 is not a multiple of the rollout (4 envs x 64 steps): training 2816 steps"
    )
    result = read_json(tmp_path / "runs" / "honest" / "eval.json")
    assert result["total_timesteps"] == 2816 == 11 * ROLLOUT
    assert result["teacher"]["sha256"] == sha256(teacher) and result["teacher"]["path"] == str(teacher)
    assert lines[-2:] == [
        f"wrote {os.path.join('runs', 'honest', 'eval.json')}",
        f"wrote {os.path.join('runs', 'honest', 'checkpoint.pt')}",
    ]
    # a new run never writes into a folder that holds one
    again = run_script(
        "ppd_mujoco.py",
        [*HOPPER, "--total-timesteps", ROLLOUT, "--teacher-path", teacher, "--run-name", "honest"],
        cwd=tmp_path,
        check=False,
    )
    assert again.returncode == 2 and "runs/honest already holds a run; resume it with --resume" in one_error_line(
        again.stderr, again.returncode
    )
    assert read_json(tmp_path / "runs" / "honest" / "eval.json")["total_timesteps"] == 2816


def start(script, args, cwd):
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, script), *map(str, args)],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_steps(proc, count: int) -> list:
    """Read stdout until `count` progress lines ('step N/M ...') have been printed; return the lines."""
    lines = []
    while sum(line.startswith("step ") for line in lines) < count:
        line = proc.stdout.readline()
        assert line, f"the run ended early: {''.join(lines)}{proc.stderr.read()}"
        lines.append(line)
    return lines


TEACHER_OF = {"mujoco": "Hopper-v4__1.pt", "atari": "Pong-v5__1.pt", "procgen": "starpilot__1.pt"}


def flags_of(suite: str, script: str, teacher_runs) -> list:
    if script.startswith("ppo_teacher"):
        return [*TINY[suite], *TINY_TEACHER_NET[suite], "--teachers-dir", "new_teachers"]
    teacher = ["--teacher-path", teacher_runs[suite][0] / "teachers" / TEACHER_OF[suite]]
    if script in ("student_distill.py", "teacher_distill.py"):
        return [
            "--env-id",
            "Hopper",
            "--num-envs",
            4,
            "--num-steps",
            8,
            "--eval-episodes",
            1,
            "--eval-envs",
            1,
            *teacher,
        ]
    return [*TINY[suite], *teacher]


@pytest.mark.parametrize(
    "script,suite,signum",
    [
        ("ppd_mujoco.py", "mujoco", signal.SIGINT),
        ("ppo_teacher_mujoco.py", "mujoco", signal.SIGTERM),
        ("student_distill.py", "mujoco", signal.SIGTERM),
        ("ppo_teacher_atari.py", "atari", signal.SIGINT),
        ("ppd_procgen.py", "procgen", signal.SIGTERM),
        ("ppd_atari.py", "atari", signal.SIGTERM),
        ("ppo_teacher_procgen.py", "procgen", signal.SIGINT),
        ("teacher_distill.py", "mujoco", signal.SIGINT),
    ],
)
def test_a_signal_keeps_the_work_and_says_how_to_resume(script, suite, signum, tmp_path, teacher_runs):
    module = load_script(script[:-3])
    flags = [*flags_of(suite, script, teacher_runs), "--checkpoint-every", 1000, "--run-name", "stopped"]
    rollout = 4 * int(flags[flags.index("--num-steps") + 1])
    proc = start(script, [*flags, "--total-timesteps", 1000 * rollout], tmp_path)
    wait_for_steps(proc, 3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=600)  # a hang guard only: the bound is the next line
    # acted on at the next env step or minibatch (well within SLURM's 30 s grace before SIGKILL): at most the
    # update already logging finishes its line, and none starts after it
    assert sum(line.startswith("step ") for line in out.splitlines()) <= 1, out
    assert proc.returncode == 128 + signum
    checkpoint = os.path.join("runs", "stopped", "checkpoint.pt")
    state = module.load_checkpoint(str(tmp_path / checkpoint))
    step = state["global_step"]
    assert step >= 3 * rollout and step % rollout == 0 and state["update"] == step // rollout
    assert err.strip().splitlines()[-1] == (
        f"interrupted by {signal.Signals(signum).name}: {checkpoint} holds step "
        f"{step}; resume with: python {os.path.join(ROOT, script)} --resume "
        f"{checkpoint}"
    )
    assert "Traceback" not in err

    # --resume alone (the flags come from the checkpoint), with --total-timesteps to end the run sooner
    total = step + 5 * rollout
    proc = run_script(script, ["--resume", checkpoint, "--total-timesteps", total], cwd=tmp_path)
    assert f"resumed {os.path.join('runs', 'stopped')} from step {step}" in proc.stdout
    assert read_json(tmp_path / "runs" / "stopped" / "eval.json")["total_timesteps"] == total
    # one set of curves: every update logged once, in order, whatever the interrupted run logged after its checkpoint
    sps_steps = [s for s, _ in read_scalars(str(tmp_path / "runs" / "stopped"))["charts/SPS"]]
    assert sps_steps == list(range(rollout, total + 1, rollout))


def test_a_carried_run_resumes_on_a_machine_without_its_folder(tmp_path, teacher_runs):
    """results/carry.sh: a grid run stopped at a piece's end is packed whole; on a machine without the grid's run
    folder (a new session) restore brings it back and it resumes with one set of curves; once it has finished, the
    next save drops its pack."""
    script = "ppd_mujoco.py"
    flags = [*flags_of("mujoco", script, teacher_runs), "--checkpoint-every", 1000, "--run-name", "long"]
    rollout = 4 * int(flags[flags.index("--num-steps") + 1])
    grid, store = tmp_path / "grid", tmp_path / "carry"
    proc = start(script, [*flags, "--total-timesteps", 1000 * rollout, "--runs-dir", grid / "runs"], tmp_path)
    wait_for_steps(proc, 3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=600)
    run = grid / "runs" / "long"
    step = load_script(script[:-3]).load_checkpoint(str(run / "checkpoint.pt"))["global_step"]
    before = {p.name: sha256(p) for p in run.iterdir() if p.is_file()}
    assert "checkpoint.pt" in before and any(n.startswith("events.out.tfevents") for n in before), before

    def carry(action):
        env = {**os.environ, "GRID": str(grid), "CARRY_DIR": str(store), "COMMIT": "0"}
        return subprocess.run(["bash", "results/carry.sh", action], cwd=ROOT, env=env, capture_output=True, text=True)

    assert carry("save").returncode == 0 and os.listdir(store / "grid") == ["long.tar.gz"]
    subprocess.run(["rm", "-r", str(grid)], check=True)  # the next session's machine: no runs folder
    assert carry("restore").stdout == f"restored {grid}/runs/long from {store}/grid/long.tar.gz\n"
    assert {p.name: sha256(p) for p in run.iterdir() if p.is_file()} == before
    total = step + 3 * rollout
    run_script(script, ["--resume", run / "checkpoint.pt", "--total-timesteps", total], cwd=tmp_path)
    sps_steps = [s for s, _ in read_scalars(str(run))["charts/SPS"]]
    assert sps_steps == list(range(rollout, total + 1, rollout))  # the carried curves and the resumed ones
    assert carry("save").returncode == 0 and os.listdir(store / "grid") == []
    assert carry("restore").stdout == ""


def test_resume_refuses_a_contradicting_flag(tmp_path, teacher_runs):
    work, _ = teacher_runs["mujoco"]
    teacher = work / "teachers" / "Hopper-v4__1.pt"
    run_script(
        "ppd_mujoco.py",
        [
            *HOPPER,
            "--student",
            "smaller",
            "--total-timesteps",
            ROLLOUT,
            "--teacher-path",
            teacher,
            "--run-name",
            "small",
        ],
        cwd=tmp_path,
    )
    checkpoint = os.path.join("runs", "small", "checkpoint.pt")
    before = sha256(tmp_path / checkpoint)
    proc = run_script("ppd_mujoco.py", ["--resume", checkpoint, "--student", "larger"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and one_error_line(proc.stderr, proc.returncode) == (
        f"error: --student larger contradicts {checkpoint}, whose run has smaller; leave it out to resume that run, "
        f"or start a new one"
    )
    # the same env under its short name agrees; a longer budget extends the run
    proc = run_script(
        "ppd_mujoco.py", ["--resume", checkpoint, "--env-id", "Hopper", "--total-timesteps", 2 * ROLLOUT], cwd=tmp_path
    )
    assert sha256(tmp_path / checkpoint) != before
    assert module_step(tmp_path / checkpoint) == 2 * ROLLOUT


def module_step(path) -> int:
    return load_script("ppd_mujoco").load_checkpoint(str(path))["global_step"]


def test_time_based_checkpoint_survives_sigkill(tmp_path, teacher_runs):
    """--checkpoint-every far away, --checkpoint-minutes tiny: a SIGKILL still leaves a recent checkpoint."""
    work, _ = teacher_runs["mujoco"]
    proc = start(
        "ppd_mujoco.py",
        [
            *HOPPER,
            "--teacher-path",
            work / "teachers" / "Hopper-v4__1.pt",
            "--total-timesteps",
            1000 * ROLLOUT,
            "--checkpoint-every",
            100_000,
            "--checkpoint-minutes",
            0.0001,
            "--run-name",
            "killed",
        ],
        tmp_path,
    )
    wait_for_steps(proc, 4)
    proc.kill()
    proc.communicate(timeout=60)
    assert module_step(tmp_path / "runs" / "killed" / "checkpoint.pt") >= 3 * ROLLOUT


def test_sigkill_while_writing_a_checkpoint_leaves_the_previous_one_readable(tmp_path):
    """A writer killed while its second checkpoint is half written (its torch.save writes half the bytes, says so
    and stalls: the kill lands mid-write by construction, not by timing): the first checkpoint loads, intact."""
    path = tmp_path / "checkpoint.pt"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import io, sys, time; sys.path.insert(0, {ROOT!r})
import ppd_mujoco as m
args, agent, norm = m.Args(), m.Agent(m.network_spec((64, 64)), (11,), 3), m.ObsNormalizer((11,), 10.0)
m.save_checkpoint({str(path)!r}, agent, args, norm, 1, 1)
real_save = m.torch.save
def stalled_save(obj, f):
    data = io.BytesIO()
    real_save(obj, data)
    with open(f, "wb") as out:
        out.write(data.getvalue()[:len(data.getvalue()) // 2])
        out.flush()
        print("half written", flush=True)
        time.sleep(600)
m.torch.save = stalled_save
m.save_checkpoint({str(path)!r}, agent, args, norm, 2, 2)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "half written"  # waits for the event, however loaded the machine
    writer.kill()
    writer.communicate()
    assert any(n.startswith("checkpoint.pt.tmp") for n in os.listdir(tmp_path))  # killed mid-write
    state = load_script("ppd_mujoco").load_checkpoint(str(path))
    assert state["global_step"] == 1  # the last complete checkpoint, intact


def tracked(path: str) -> bool:
    files = subprocess.run(["git", "ls-files", "--", path], cwd=ROOT, capture_output=True, text=True).stdout
    return bool(files.strip())


def test_data_the_docs_call_committed_is_tracked():
    """Every results/ or teachers/ path that README.md or a docs/*.md page names is in git, and no ignore rule
    hides them."""
    named = set()
    pages = sorted(os.path.join("docs", n) for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md"))
    assert "docs/results.md" in pages and "docs/teachers.md" in pages  # the README's topics moved to docs/
    for doc in ["README.md"] + pages:
        # the prose and tables, not the command examples (their paths are what a command would write)
        text = "".join(open(os.path.join(ROOT, doc)).read().split("```")[::2])
        for match in re.finditer(
            r"(?:\.\./)?((?:results|teachers)/[\w./{}*<>-]*)", text
        ):  # a template is skipped whole
            path = match.group(1).rstrip(".")
            if not any(c in path for c in "{*<"):
                named.add(path)
    assert "results/runs/" in named and "teachers/Hopper-v4__1.pt" in named
    missing = sorted(p for p in named if not tracked(p))
    assert not missing, f"named in the docs but not tracked by git: {missing}"
    for path in ("results/runs/any__run__1/eval.json", "results/report/table1.csv", "teachers/Hopper-v4__2.pt"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0
        assert not ignored, f"{path} would be ignored by git"


@pytest.mark.parametrize("script", ["ppo_teacher_mujoco.py", "student_distill.py"])
def test_resume_edge_cases(script, tmp_path, teacher_runs):
    """A finished run resumed: says so and rewrites nothing; a budget below the checkpoint's step: one line;
    the run folder given to --resume: its checkpoint.pt is used."""
    work, _ = teacher_runs["mujoco"]
    flags = [*HOPPER, "--total-timesteps", 2 * ROLLOUT, "--run-name", "done"]
    if script == "ppo_teacher_mujoco.py":
        flags += ["--hidden-sizes", "16", "16", "--teachers-dir", tmp_path / "teachers"]
    else:
        flags = [f for f in flags if f not in ("--minibatch-size", "64", "--num-steps")] + [
            "--num-steps",
            "64",
            "--teacher-path",
            work / "teachers" / "Hopper-v4__1.pt",
        ]
    run_script(script, flags, cwd=tmp_path)
    run_dir = tmp_path / "runs" / "done"
    before = {name: (run_dir / name).read_bytes() for name in ("eval.json", "checkpoint.pt")}
    events = sorted(os.listdir(run_dir))
    proc = run_script(script, ["--resume", run_dir], cwd=tmp_path)  # the folder, not the file
    step = read_json(run_dir / "eval.json")["total_timesteps"]
    assert proc.stdout.strip().splitlines() == [
        f"{run_dir} is finished at step {step} and its eval.json is written; nothing to do "
        f"(give a larger --total-timesteps to train on)"
    ]
    assert {name: (run_dir / name).read_bytes() for name in before} == before and sorted(os.listdir(run_dir)) == events
    proc = run_script(
        script, ["--resume", run_dir / "checkpoint.pt", "--total-timesteps", ROLLOUT], cwd=tmp_path, check=False
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_error_line(proc.stderr, proc.returncode) == (
        f"error: --total-timesteps {ROLLOUT} is below step {step}, where "
        f"{run_dir / 'checkpoint.pt'} stands; give at least that many to resume it"
    )
    proc = run_script(script, ["--resume", tmp_path / "runs"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and one_error_line(proc.stderr, proc.returncode) == (
        f"error: checkpoint not found: {tmp_path / 'runs' / 'checkpoint.pt'}"
    )
    if script == "ppo_teacher_mujoco.py":  # stopped during its final evaluation (before eval.json and the
        for path in (run_dir / "eval.json", tmp_path / "teachers" / "Hopper-v4__1.pt"):  # teacher are written)
            path.unlink()  # resumed, it evaluates the same policy with the same statistics: the same returns
        run_script(script, ["--resume", run_dir], cwd=tmp_path)
        again = read_json(run_dir / "eval.json")["evaluation"]["returns"]
        assert again == json.loads(before["eval.json"])["evaluation"]["returns"]


def test_a_missing_teacher_is_one_line_before_any_output_and_its_hint_runs(tmp_path):
    """A mistyped --teacher-path: nothing printed on stdout (no run folder line), one error line whose hint is a
    teacher command that writes the missing file without meeting the overwrite guard."""
    elsewhere = tmp_path / "mine" / "Hopper-v4__1.pt"
    proc = run_script("ppd_mujoco.py", [*HOPPER, "--teacher-path", elsewhere], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    hint = one_error_line(proc.stderr, proc.returncode).split(f"train one into {elsewhere.parent} with: ")[1]
    assert hint == (
        f"python {os.path.join(ROOT, 'ppo_teacher_mujoco.py')} --env-id Hopper-v4 --seed 1 "
        f"--teachers-dir {elsewhere.parent}"
    )
    (tmp_path / "teachers").mkdir()  # a teacher of that env and seed at the default place is not in the way
    (tmp_path / "teachers" / "Hopper-v4__1.pt").write_bytes(b"")
    teacher_flags = hint.split()[2:] + [*HOPPER[2:], "--hidden-sizes", "8", "8", "--total-timesteps", ROLLOUT]
    run_script("ppo_teacher_mujoco.py", teacher_flags, cwd=tmp_path)
    assert elsewhere.is_file()
    proc = run_script(
        "ppd_mujoco.py", [*HOPPER, "--teacher-path", tmp_path / "mine" / "typo.pt"], cwd=tmp_path, check=False
    )
    assert one_error_line(proc.stderr, proc.returncode).endswith(
        f"--teachers-dir {elsewhere.parent} (it writes Hopper-v4__1.pt there)"
    )
