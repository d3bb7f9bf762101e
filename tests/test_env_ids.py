"""Issue #42 item 5: env ids as people type them. Every script applies one rule (match_env_id): any case, with or
without ALE/ or procgen- prefixes and Atari's NoFrameskip / Deterministic variants, no version or one that names
the suite's env; a misspelling gets the nearest id, a version the project does not run gets the reason."""

import pytest

from conftest import load_script, one_error_line, run_cli

SCRIPTS = {
    "atari": ("ppo_teacher_atari", "ppd_atari"),
    "mujoco": ("ppo_teacher_mujoco", "ppd_mujoco"),
    "procgen": ("ppo_teacher_procgen", "ppd_procgen"),
}
BASELINES = ("student_distill", "teacher_distill")
SPELLINGS = {
    "atari": [
        ("Pong", "Pong-v5"),
        ("pong", "Pong-v5"),
        ("Pong-v5", "Pong-v5"),
        ("PongNoFrameskip-v4", "Pong-v5"),
        ("ALE/Pong-v5", "Pong-v5"),
        ("BreakoutDeterministic-v4", "Breakout-v5"),
        ("SPACEINVADERS", "SpaceInvaders-v5"),
    ],
    "mujoco": [
        ("Hopper", "Hopper-v4"),
        ("hopper", "Hopper-v4"),
        ("Hopper-v4", "Hopper-v4"),
        ("HALFCHEETAH-V4", "HalfCheetah-v4"),
        ("walker2d", "Walker2d-v4"),
    ],
    "procgen": [
        ("coinrun", "coinrun"),
        ("CoinRun", "coinrun"),
        ("procgen-coinrun-v0", "coinrun"),
        ("procgen:procgen-ninja-v0", "ninja"),
        ("Miner", "miner"),
    ],
}
# typed -> what the one error line says
REFUSED = {
    "atari": [("Pongg", "unknown env id 'Pongg'; did you mean Pong-v5? "), ("Pong-v7", "runs Pong-v5, not -v7")],
    "mujoco": [
        ("Hoper", "unknown env id 'Hoper'; did you mean Hopper-v4? "),
        ("Hopper-v5", "env id 'Hopper-v5': this project runs Hopper-v4, not -v5 (the paper's version; "),
    ],
    "procgen": [
        ("coinrn", "unknown env id 'coinrn'; did you mean coinrun? "),
        ("procgen-coinrun-v1", "runs coinrun, not -v1 (procgen's only version)"),
    ],
}


def cases(table: dict) -> list:
    return [
        (script, typed, expected)
        for suite, scripts in SCRIPTS.items()
        for script in (*scripts, *BASELINES)
        for typed, expected in table[suite]
    ]


@pytest.mark.parametrize("script,typed,canonical", cases(SPELLINGS))
def test_every_script_reads_the_spellings_of_one_env(script, typed, canonical):
    got = load_script(script).canonical_env_id(typed)
    assert got == (canonical if script not in BASELINES else (got[0], canonical)), got
    if script in BASELINES:  # the suite inferred from the id alone
        assert got[0] == next(suite for suite, spellings in SPELLINGS.items() if (typed, canonical) in spellings)


@pytest.mark.parametrize("script,typed,message", cases(REFUSED))
def test_a_misspelt_or_other_version_id_gets_one_line_that_says_what_to_type(
    script, typed, message, capsys, monkeypatch
):
    code, out, err = run_cli(load_script(script), ["--env-id", typed], capsys, monkeypatch)
    one_error_line(err, code, message)
    assert out == ""


def test_a_name_far_from_every_id_gets_the_lists_and_no_guess(capsys, monkeypatch):
    code, _, err = run_cli(load_script("student_distill"), ["--env-id", "NoSuchGame"], capsys, monkeypatch)
    line = one_error_line(err, code, "unknown env id 'NoSuchGame'; Procgen games: bigfish, ")
    assert "did you mean" not in line and "Mujoco v4 ids: Ant-v4, " in line and "Atari games, e.g. Pong-v5" in line
