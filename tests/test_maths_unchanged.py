"""Refactors keep the training maths: a fixed-seed tiny run of every script gives the same final parameters, the
same normalisation statistics and the same evaluation returns as the same run of the script at REFERENCE, the
commit before the refactor of issues #41 and #42 began. Both runs happen here, on this machine, in fresh
interpreters with one torch thread, so the comparison is exact whatever the CPU (bit-equality holds between two
runs on one machine, not between machines)."""

import hashlib
import os
import subprocess

import pytest
import torch

from conftest import CANONICAL, ROOT, SCRIPTS as PROJECT_SCRIPTS, SUITES, read_json, run_script, tiny_args

REFERENCE = "91b30fc66edff342094bf30dcae02af93da9adc3"  # main before issue #41/#42's refactor (2026-12-03)


def git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)


# the eight of REFERENCE; multi_teacher_procgen.py came later, and tests/test_multi_teacher.py ties its maths to
# ppd_procgen.py's (one game trains bit for bit as ppd_procgen.py)
REFERENCE_SCRIPTS = [script.removesuffix(".py") for script in PROJECT_SCRIPTS if script != "multi_teacher_procgen.py"]


@pytest.fixture(scope="module")
def reference_scripts(tmp_path_factory):
    """The eight scripts as they were at REFERENCE, in a folder of their own."""
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone has no REFERENCE commit to compare with")
    commit = git("rev-parse", "--verify", f"{REFERENCE}^{{commit}}")
    assert commit.returncode == 0, f"the reference commit {REFERENCE[:7]} is not in this repository"
    folder = tmp_path_factory.mktemp("reference_scripts")
    for script in REFERENCE_SCRIPTS:
        source = git("show", f"{REFERENCE}:{script}.py")
        assert source.returncode == 0, source.stderr
        (folder / f"{script}.py").write_text(source.stdout)
    return folder


def fingerprint(run_dir) -> dict:
    """What the maths produced: a hash of every final parameter and normalisation statistic, and the returns."""
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    for part in ("actor", "critic", "obs_rms", "return_rms"):
        for key, value in sorted((state.get(part) or {}).items()):
            digest.update(key.encode())
            digest.update(torch.as_tensor(value).numpy().tobytes())
    result = read_json(run_dir / "eval.json")
    return {
        "parameters": digest.hexdigest(),
        "global_step": state["global_step"],
        "returns": result["evaluation"]["returns"],
    }


SCRIPTS = [
    (suite, script)
    for suite in SUITES
    for script in (f"ppo_teacher_{suite}.py", f"ppd_{suite}.py", "student_distill.py", "teacher_distill.py")
]


@pytest.mark.parametrize("suite,script", SCRIPTS)
def test_a_fixed_seed_run_gives_the_reference_commits_parameters(
    suite, script, reference_scripts, teacher_runs, tmp_path
):
    teacher = teacher_runs[suite][0] / "teachers" / f"{CANONICAL[suite]}__1.pt"
    args = [*tiny_args(script, suite, teacher), "--seed", "1", "--run-name", "fixed"]
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    got, expected = ({}, {})
    for version, path, out in (
        ("now", os.path.join(ROOT, script), got),
        ("before", str(reference_scripts / script), expected),
    ):
        (tmp_path / version).mkdir()
        run_script(path, args, cwd=tmp_path / version, env=one_thread)
        out.update(fingerprint(tmp_path / version / "runs" / "fixed"))
    assert got == expected, f"{script} on {suite}: the training maths changed since {REFERENCE[:7]}"
    assert got["global_step"] == int(args[args.index("--total-timesteps") + 1]) and len(got["returns"]) == 2
