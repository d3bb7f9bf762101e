"""Copy-and-modify, as researchers do it (issue #42): a copied script records itself and its own source, its runs
are a column of their own in the report and tools load its checkpoints; what the report reads but does not show
is named; the default teacher is found beside the script from another folder, and runs stay under the current
folder."""

import glob
import os
import shutil
import sys

from conftest import ROOT, TINY, TINY_STEPS, one_error_line, read_json, run_script, sha256

sys.path.insert(0, os.path.join(ROOT, "tools"))
import report  # noqa: E402

TINY_STUDENT = [*TINY["mujoco"], "--total-timesteps", TINY_STEPS["mujoco"], "--student", "smaller", "--seed", "1"]


def table1_cell(text: str, row: str, column: str) -> str:
    header, *rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.split("## Table 1: fraction of teacher")[1].split("##")[0].splitlines()
        if line.startswith("|") and not line.startswith("|-")
    ]
    return next(r for r in rows if r[0] == row)[header.index(column)]


def test_a_copied_script_is_its_own_method_in_the_report_and_tools(teacher_runs, tmp_path):
    """`cp ppd_mujoco.py my_ppd_mujoco.py`, rename its METHOD (the worst case: no method the report knows), run it
    beside the original and a reverse-KL run of the original: the copy's run folder, eval.json and checkpoint name
    the copy and its sha256; Table 1 gives the copy and the original a column each, with each run's own fraction;
    the reverse-KL run, which no table shows, is listed under "Left out"; tools/evaluate.py re-evaluates the
    copy's checkpoint with the copy's code to the same returns."""
    work = tmp_path / "work"
    (work / "teachers").mkdir(parents=True)
    teacher = teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"
    for path in (teacher, teacher.with_suffix(".json")):
        shutil.copy(path, work / "teachers")
    copy = tmp_path / "mine" / "my_ppd_mujoco.py"
    copy.parent.mkdir()
    source = open(os.path.join(ROOT, "ppd_mujoco.py")).read()
    assert source.count('METHOD = "ppd"\n') == 1
    copy.write_text(source.replace('METHOD = "ppd"\n', 'METHOD = "my_ppd"\n'))
    run_script(str(copy), TINY_STUDENT, cwd=work)
    run_script("ppd_mujoco.py", TINY_STUDENT, cwd=work)
    run_script("ppd_mujoco.py", [*TINY_STUDENT, "--kl-direction", "reverse", "--run-name", "reversed"], cwd=work)

    (mine,) = glob.glob(str(work / "runs" / "Hopper-v4__my_ppd_mujoco__1__*"))
    (original,) = glob.glob(str(work / "runs" / "Hopper-v4__ppd_mujoco__1__*"))
    result = read_json(os.path.join(mine, "eval.json"))
    assert result["script"] == "my_ppd_mujoco.py" and result["method"] == "my_ppd"
    assert result["ran_on"]["script"] == "my_ppd_mujoco.py" and result["ran_on"]["script_sha256"] == sha256(copy)
    assert read_json(os.path.join(original, "eval.json"))["ran_on"]["script_sha256"] == sha256(
        os.path.join(ROOT, "ppd_mujoco.py")
    )

    teacher_score = read_json(work / "teachers" / "Hopper-v4__1.json")["evaluation"]["mean"]
    text = report.report(
        report.Args(
            runs_dir=str(work / "runs"),
            out_dir=str(tmp_path / "report"),
            bootstrap_reps=100,
            teachers_dirs=(str(work / "teachers"),),
        )
    )
    for run, column in ((mine, "smaller my_ppd_mujoco"), (original, "smaller ppd")):
        fraction = read_json(os.path.join(run, "eval.json"))["evaluation"]["mean"] / teacher_score
        assert table1_cell(text, "mujoco", column) == f"{fraction:.2f}", (column, text)
    left_out = text.split("## Left out")[1]
    assert "reversed: --kl-direction reverse" in left_out and "nothing" not in left_out
    assert "my_ppd_mujoco" not in left_out

    out = tmp_path / "again.json"
    run_script(
        "tools/evaluate.py",
        ["--checkpoint", os.path.join(mine, "checkpoint.pt"), "--episodes", 2, "--out", out],
        cwd=tmp_path,
    )
    assert read_json(out)["evaluation"]["returns"] == result["evaluation"]["returns"]


def test_the_default_teacher_is_found_beside_the_script_from_another_folder(tmp_path):
    """From a folder without teachers/, the shipped teacher beside the script is used and named, and the run folder
    is under the current folder; a teacher found nowhere names both folders it looked in and the command that
    trains one, with the teacher script's path."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_script("ppd_mujoco.py", [*TINY_STUDENT, "--total-timesteps", 256, "--run-name", "far"], cwd=elsewhere)
    shipped = os.path.join(ROOT, "teachers", "Hopper-v4__1.pt")
    score = read_json(os.path.join(ROOT, "teachers", "Hopper-v4__1.json"))["evaluation"]["mean"]
    assert f"teacher: {shipped} (recorded score {score:.2f} over 50 episodes)" in proc.stdout.splitlines()
    result = read_json(elsewhere / "runs" / "far" / "eval.json")
    assert result["teacher"]["path"] == shipped and result["teacher"]["sha256"] == sha256(shipped)
    assert not (tmp_path / "runs").exists() and not os.path.exists(os.path.join(ROOT, "runs", "far"))

    proc = run_script("ppd_mujoco.py", ["--env-id", "Hopper", "--seed", "7"], cwd=elsewhere, check=False)
    line = one_error_line(proc.stderr, proc.returncode, "teacher checkpoint not found: teachers/Hopper-v4__7.pt")
    assert f"looked in {elsewhere / 'teachers'} and {os.path.join(ROOT, 'teachers')}" in line
    assert (
        f"train one into {elsewhere / 'teachers'} with: python "
        f"{os.path.join(ROOT, 'ppo_teacher_mujoco.py')} --env-id Hopper-v4 --seed 7"
    ) in line
