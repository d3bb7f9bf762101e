"""What the tools share: their entry point, their one-line error, loading the script that wrote a checkpoint,
and the small helpers (atomic writes, file hashes, counted nouns)."""

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = (
    "ppo_teacher_atari.py",
    "ppo_teacher_mujoco.py",
    "ppo_teacher_procgen.py",
    "ppd_atari.py",
    "ppd_mujoco.py",
    "ppd_procgen.py",
    "student_distill.py",
    "teacher_distill.py",
    "multi_teacher_procgen.py",
)  # the project's own; copies load too


class UsageError(Exception):
    """Bad input: reported as one line, without a traceback."""


def import_script(script: str, recorded_path: Optional[str] = None):
    """The module of the script that wrote a checkpoint (the scripts' main() is guarded: importing runs nothing).
    A copy of a script (a file name none of the eight has) is imported from the file the checkpoint recorded,
    else from the project's folder or the current one."""
    if script in SCRIPTS:
        return importlib.import_module(script[: -len(".py")])
    folders = [os.path.dirname(recorded_path)] if recorded_path else []
    for path in [os.path.join(folder, script) for folder in folders + [ROOT, os.getcwd()]]:
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location(script[: -len(".py")], path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise UsageError(
        f"the checkpoint was written by '{script}', which is not one of this project's scripts and "
        f"is not at {recorded_path or 'a recorded path'}, in {ROOT} or in the current folder"
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str, text: str) -> None:
    """Atomic: a reader (or an interrupted write) never sees half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def run_main(main) -> None:
    """main(), and a quiet exit (code 1, no traceback) when stdout is a pipe closed early (`| head`), as Unix
    tools do: the recipe of Python's signal docs."""
    try:
        try:
            main()
        finally:
            sys.stdout.flush()  # a pipe closed early fails here when the output was buffered
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush would fail again
        sys.exit(1)
