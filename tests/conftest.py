"""Shared helpers: run the real scripts, read back their real outputs."""

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys

import signal

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(1, os.path.join(ROOT, "tools"))
from entry import SCRIPTS  # noqa: E402, F401  the training scripts (tools/entry.py), one list for the tests

# Tiny settings per suite, so that a whole run takes seconds on 2 CPU cores: rollout and evaluation flags
# shared by every script (TINY), and small teacher networks (TINY_TEACHER_NET).
TINY_UPDATE_AND_EVAL = "--minibatch-size 64 --eval-episodes 2 --eval-envs 2".split()
TINY = {
    "mujoco": "--env-id Hopper --num-envs 4 --num-steps 64".split() + TINY_UPDATE_AND_EVAL,
    "atari": "--env-id Pong --num-envs 4 --num-steps 32".split() + TINY_UPDATE_AND_EVAL + ["--max-episode-steps", "50"],
    "procgen": "--env-id starpilot --num-envs 4 --num-steps 32".split() + TINY_UPDATE_AND_EVAL,
}
TINY_TEACHER_NET = {
    "mujoco": ["--hidden-sizes", "32", "32"],
    "atari": ["--channels", "4", "4", "4", "--fc-size", "16"],
    "procgen": ["--channels", "4", "4", "4", "--fc-size", "16"],
}
TINY_STEPS = {"mujoco": 512, "atari": 256, "procgen": 512}
CANONICAL = {"mujoco": "Hopper-v4", "atari": "Pong-v5", "procgen": "starpilot"}  # starpilot: short episodes
SUITES = tuple(TINY)
SHAPES = {"mujoco": ((11,), 3), "atari": ((4, 84, 84), 6), "procgen": ((64, 64, 3), 15)}  # Hopper, Pong, Procgen


def tiny_args(script: str, suite: str, teacher) -> list:
    """A tiny run of script on suite (the fixed-seed maths test's, and the GPU-readiness tests'): the suite's tiny
    settings (a baseline's, as in test_baselines); a tiny teacher network, or teacher distilled onto the smaller
    student."""
    if script.startswith("ppo_teacher"):
        net = ["--hidden-sizes", "32", "32"] if suite == "mujoco" else ["--channels", "4", "4", "4", "--fc-size", "16"]
        return [*TINY[suite], "--total-timesteps", TINY_STEPS[suite], *net]
    students = ["--teacher-path", teacher, "--student", "smaller"]
    if script.startswith("ppd"):
        return [*TINY[suite], "--total-timesteps", TINY_STEPS[suite], *students]
    flags = TINY[suite][: TINY[suite].index("--minibatch-size")] + TINY[suite][TINY[suite].index("--eval-episodes") :]
    return [*flags, "--num-steps", "8", "--total-timesteps", 4 * 8 * 4, *students]


def categorical_kl(p_logits, q_logits):
    """KL(p || q) per row from the definition: the reference the scripts' KLs are checked against."""
    import torch

    log_p, log_q = torch.log_softmax(p_logits, -1), torch.log_softmax(q_logits, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def load_script(name: str):
    """Import a top-level script as a module (they have no side effects on import)."""
    return importlib.import_module(name)


def checked(proc: subprocess.CompletedProcess, check: bool) -> subprocess.CompletedProcess:
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{proc.args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def run_script(script: str, args, cwd, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """A script (or tool) in a fresh interpreter: for what only a process shows (signals, exit status, the shell)."""
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        **{"timeout": 900, **kwargs},
    )
    return checked(proc, check)


def run_main(script: str, args, cwd, check: bool = True) -> subprocess.CompletedProcess:
    """A script's (or tool's) main() in this process with argv and cwd set (no interpreter start-up, ~3.5 s of
    imports): the same outputs as run_script; an unexpected exception propagates with its traceback. The signal
    handlers a script arms (to checkpoint on SIGTERM) are put back afterwards, so pytest stays interruptible."""
    folder = os.path.join(ROOT, os.path.dirname(script))
    if folder not in sys.path:  # tools/, results/stopgrad/: importable by their file name
        sys.path.insert(1, folder)
    module = load_script(os.path.basename(script)[: -len(".py")])
    argv, cwd_before, out, err, code = sys.argv, os.getcwd(), io.StringIO(), io.StringIO(), 0
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    sys.argv = [getattr(module, "SCRIPT", script), *map(str, args)]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            module.main()
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = argv
        os.chdir(cwd_before)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return checked(subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue()), check)


def one_error_line(err: str, code: int, message: str = "") -> str:
    """The usage-error contract: exit 2, stderr exactly one line `error: ...` (containing message), no traceback.
    Returns the line."""
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), (code, err)
    assert message in err and "Traceback" not in err, (message, err)
    return err[:-1]


def sha256(path) -> str:
    """The hex sha256 of a file's bytes (what records and eval.json store as checkpoint_sha256)."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_scalars(run_dir: str) -> dict:
    """tag -> list of (step, value) from the tensorboard event files of a run folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_cli(module, argv, capsys, monkeypatch):
    """Run module.main() in-process with argv; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [module.SCRIPT, *map(str, argv)])
    code = 0
    try:
        module.main()
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="session")
def teacher_runs(tmp_path_factory):
    """One tiny teacher run per suite, shared by the tests that read its outputs: suite -> work dir."""
    dirs = {}
    for suite in SUITES:
        work = tmp_path_factory.mktemp(f"teacher_{suite}")
        proc = run_main(
            f"ppo_teacher_{suite}.py",
            [
                *TINY[suite],
                *TINY_TEACHER_NET[suite],
                "--total-timesteps",
                TINY_STEPS[suite],
                "--run-name",
                "tiny",
                "--checkpoint-every",
                "1",
                "--eval-every",
                TINY_STEPS[suite] // 2,
                "--eval-every-episodes",
                1,
            ],
            cwd=work,
        )
        dirs[suite] = (work, proc)
    return dirs


@pytest.fixture(scope="session")
def pendulum_teacher(tmp_path_factory):
    """A competent InvertedPendulum-v4 teacher trained here (about 20 s), for the learning tests."""
    work = tmp_path_factory.mktemp("pendulum")
    flags = "--env-id InvertedPendulum --total-timesteps 40000 --num-steps 64 --eval-episodes 10".split()
    run_main("ppo_teacher_mujoco.py", [*flags, "--run-name", "teacher"], cwd=work)
    return work


def check_run_record(result: dict, module, suite: str) -> None:
    """eval.json records what the run ran on (issue #37): its environments (Procgen's level sets, the backends and
    their versions), its code (git commit, the script's sha256), its full arguments, device and versions."""
    import dataclasses
    import importlib.metadata

    import torch

    args = result["ran_on"]["args"]
    assert set(args) == {f.name for f in dataclasses.fields(module.Args)} and args["env_id"] == result["env_id"]
    assert args["seed"] == result["seed"]
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    ran_on = result["ran_on"]
    assert ran_on["git_commit"] == head and isinstance(ran_on["git_dirty"], bool)
    assert ran_on["script"] == result["script"] and ran_on["script_sha256"] == sha256(
        os.path.join(ROOT, result["script"])
    )
    assert (ran_on["device"], ran_on["torch"], ran_on["cuda"]) == ("cpu", torch.__version__, torch.version.cuda)
    assert ran_on["device_name"] and ran_on["numpy"] and ran_on["python"]
    training = result["training_envs"]
    evaluations = [
        e
        for e in (
            result["evaluation"],
            result["evaluation_train_levels"],
            (result.get("teacher") or {}).get("evaluation"),
        )
        if e
    ]
    assert training["suite"] == suite and training["env_id"] == result["env_id"]
    if suite == "procgen":
        assert training == {
            "suite": suite,
            "env_id": result["env_id"],
            "backend": "procgen",
            "version": importlib.metadata.version("procgen-mirror"),
            "start_level": args["start_level"],
            "num_levels": args["num_levels"],
            "distribution_mode": args["distribution_mode"],
        }
        assert (training["start_level"], training["num_levels"], training["distribution_mode"]) == (0, 200, "easy")
        for evaluation in evaluations:
            levels = evaluation["envs"]
            if evaluation["levels"] == "train":
                assert levels == training
            else:  # unseen test levels: [1e6, 2e6), disjoint from [0, 200)
                assert (levels["start_level"], levels["num_levels"]) == (1_000_000, 1_000_000), levels
    elif suite == "mujoco":
        assert training["backend"] == args["env_backend"] == "envpool"
        assert training["version"] == importlib.metadata.version("envpool")
        assert training["mujoco"] == importlib.metadata.version("mujoco")
        for evaluation in evaluations:  # evaluated on gymnasium's v4 tasks
            assert evaluation["envs"]["backend"] == "gymnasium"
            assert evaluation["envs"]["version"] == importlib.metadata.version("gymnasium")
    else:
        assert training == {
            "suite": suite,
            "env_id": result["env_id"],
            "backend": "envpool",
            "version": importlib.metadata.version("envpool"),
            "max_episode_steps": args["max_episode_steps"],
        }
        assert all(evaluation["envs"] == training for evaluation in evaluations)
    assert len(evaluations) >= (2 if suite == "procgen" else 1)


def committed_teachers(prefix: str = "") -> list:
    """The teacher files git ships (teachers/{env_id}__{seed}, without .pt), whose names start with prefix: what a
    user trains into teachers/ by following the README is not one of them."""
    listed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "teachers/*.pt"], capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(n for n in (os.path.basename(p)[:-3] for p in listed) if n.startswith(prefix))
