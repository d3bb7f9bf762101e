"""Issue #42 item 2: every command of the README's code blocks, run as written (plus tiny budgets) in a copy of the
tree, writes what the README says it writes, replaces nothing git ships, and leaves a tree the suite still passes
in: the same tests are collected there, and the tests that list the project's own folders pass there."""

import os
import re
import shlex
import shutil
import subprocess
import sys

from conftest import ROOT, TINY, TINY_STEPS, TINY_TEACHER_NET, read_json, sha256

BASELINES = ("student_distill.py", "teacher_distill.py")  # they have no --minibatch-size flag
SUITE_OF = {"Hopper": "mujoco", "Pong": "atari", "coinrun": "procgen"}  # the README's example envs
# The tests that read the project's teachers/, results/ and docs/ folders rather than a tmp_path of their own; the
# others that play the shipped teachers take their list from git (conftest.committed_teachers), which the first checks.
TREE_READERS = [
    "tests/test_shipped_teachers.py::test_every_committed_teacher_is_tested",
    "tests/test_shipped_teachers.py::test_teacher_records_count_the_steps_their_logs_show",
    "tests/test_results.py::test_every_committed_run_is_a_finished_run_of_the_grid",
    "tests/test_integrity.py::test_data_the_docs_call_committed_is_tracked",
]


def readme_commands() -> list:
    """The `python SCRIPT ...` commands of the README's bash blocks, in order (comments dropped, `a && b` split);
    set-up (`python3 -m venv`) and the test command itself (`python -m pytest`) are not among them."""
    text = open(os.path.join(ROOT, "README.md")).read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in line.split("#")[0].split("&&"):
                words = shlex.split(part)
                if words[:1] == ["python"] and words[1] != "-m":
                    commands.append(words)
    return commands


def tiny(words: list) -> list:
    """The command with the suite's tiny rollout, budget and evaluation appended (tyro: the last value wins)."""
    multi = words[1] == "multi_teacher_procgen.py"  # its games are --env-ids, the paper's four by default
    suite = "procgen" if multi else SUITE_OF[words[words.index("--env-id") + 1]]
    dropped = ("--env-id", "--minibatch-size") if words[1] in BASELINES else ("--env-id",)  # theirs: the defaults'
    flags = [f for i, f in enumerate(TINY[suite]) if not set(dropped) & set(TINY[suite][max(i - 1, 0) : i + 1])]
    net = TINY_TEACHER_NET[suite] if words[1].startswith("ppo_teacher_") else []
    return [sys.executable, *words[1:], *flags, *net, "--total-timesteps", str(TINY_STEPS[suite])]


def copy_of_the_tree(dest) -> None:
    """A clone whose working tree is this one's (tracked files as they are now, untracked files git does not ignore):
    nothing ignored (runs/, a user's teachers) comes along."""
    subprocess.run(["git", "clone", "-q", "--shared", ROOT, str(dest)], check=True)
    changed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "-m", "-o", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for path in filter(None, changed):
        if os.path.isfile(os.path.join(ROOT, path)):
            os.makedirs(os.path.dirname(os.path.join(dest, path)) or dest, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, path), os.path.join(dest, path))
        elif os.path.exists(os.path.join(dest, path)):
            os.remove(os.path.join(dest, path))


def tracked_changes(clone) -> dict:
    """The tracked files that differ from the commit (uncommitted edits copied in, or a file replaced), with the
    hashes of their contents."""
    names = subprocess.run(
        ["git", "-C", str(clone), "ls-files", "-m", "-d"], capture_output=True, text=True, check=True
    ).stdout.split()
    return {name: sha256(clone / name) if os.path.exists(clone / name) else None for name in names}


def collected(cwd) -> list:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", "tests"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return sorted(line for line in proc.stdout.splitlines() if "::" in line)


def test_the_suite_passes_after_every_readme_command(tmp_path):
    commands = readme_commands()
    scripts = [words[1] for words in commands]
    assert scripts.count("ppo_teacher_mujoco.py") == 2 and "ppd_procgen.py" in scripts and len(commands) >= 10
    clone = tmp_path / "clone"
    copy_of_the_tree(clone)
    before, changed_before = collected(clone), tracked_changes(clone)  # this tree's uncommitted edits, if any
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for words in commands:
        proc = subprocess.run(tiny(words), cwd=clone, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, (shlex.join(words), proc.stdout[-2000:], proc.stderr[-2000:])
    # what the README says the commands write: seed 3's teachers beside the shipped ones, the quick one under try/
    teachers = {"teachers/Hopper-v4__3", "teachers/Pong-v5__3", "teachers/coinrun__3", "try/teachers/Hopper-v4__1"}
    for name in teachers:
        record = read_json(clone / f"{name}.json")
        assert os.path.isfile(clone / f"{name}.pt") and record["checkpoint_sha256"], name
    runs = sorted(os.listdir(clone / "runs"))
    assert len(runs) == len(commands) and all(os.path.isfile(clone / "runs" / r / "eval.json") for r in runs), runs
    assert sorted(read_json(clone / "runs" / r / "eval.json")["ran_on"]["script"] for r in runs) == sorted(scripts)
    # nothing git ships was replaced, and the suite sees the same tests and passes its folder-reading ones
    assert tracked_changes(clone) == changed_before
    assert collected(clone) == before
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TREE_READERS],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0 and f"{len(TREE_READERS)} passed" in proc.stdout, proc.stdout[-3000:]
