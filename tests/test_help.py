"""--help of every script and tool: it lists every Args field as a flag and says what an unset flag does,
never tyro's bare "(default: None)"."""

import ast
import os

import pytest

from conftest import ROOT, SCRIPTS, run_main

PROGRAMS = (*SCRIPTS, "tools/evaluate.py", "tools/import_sb3.py", "tools/report.py", "tools/sweep.py")


def args_fields(path: str) -> list:
    """The field names of the file's Args dataclass, read from its source; not the fields tyro.conf.Suppress hides
    (set by the script, not flags)."""
    tree = ast.parse(open(path).read())
    args = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Args")
    return [
        node.target.id
        for node in args.body
        if isinstance(node, ast.AnnAssign) and "Suppress" not in ast.unparse(node.annotation)
    ]


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_lists_every_flag_and_no_bare_none(program, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per flag
    proc = run_main(program, ["--help"], ROOT)
    assert "(default: None)" not in proc.stdout and "{None}" not in proc.stdout
    fields = args_fields(os.path.join(ROOT, program))
    assert len(fields) >= 4
    for name in fields:
        assert f"--{name.replace('_', '-')} " in proc.stdout or f"--{name.replace('_', '-')}," in proc.stdout, name
