"""The eight scripts repeat each other on purpose; a fix must reach every copy. Every top-level definition
(function, class or constant) that several scripts define must be identical in all of them, except where
INTENDED below says along which line the copies differ, and why."""

import ast
import inspect
import difflib
import os
from collections import defaultdict

from conftest import ROOT, SCRIPTS as PROJECT_SCRIPTS, load_script

SCRIPTS = tuple(script.removesuffix(".py") for script in PROJECT_SCRIPTS)
BASELINES = ("student_distill", "teacher_distill")
MULTI = "multi_teacher_procgen"  # ppd_procgen.py plus several teachers (issue #39)


def suite(script: str) -> str:
    """The suite a script is written for; the two baselines serve every suite from one file."""
    return "all suites" if script in BASELINES else script.rsplit("_", 1)[1]


def kind(script: str) -> str:
    return "baselines" if script in BASELINES else "ppo and ppd"


def suite_and_kind(script: str) -> str:
    return "baselines" if script in BASELINES else ("mlp" if suite(script) == "mujoco" else "pixels")


def itself(script: str) -> str:
    return script


# definition -> (the scripts whose copies must agree share a key, why the groups differ)
INTENDED = {
    "Args": (itself, "each script's own flags and defaults (Table 3 for teachers, A.3 for students)"),
    "SCRIPT": (itself, "the script's own file name"),
    "train": (itself, "the algorithm itself: PPO, PPD (Algorithm 1), student- and teacher-distill (2, 3)"),
    "METHOD": (lambda s: s.split("_")[0] if s not in BASELINES else s, "the method name in eval.json"),
    "TEACHER_SCRIPT": (itself, "the teacher script of the PPD script's suite"),
    "resolve_args": (lambda s: "baselines" if s in BASELINES else s, "each script's own flags and per-env defaults"),
    "PAPER_ENVS": (suite, "the paper's envs of the suite"),
    "SUITE": (suite, "the suite's name"),
    "make_env": (suite, "the suite's environments (envpool Atari, Mujoco v4, Procgen)"),
    "env_record": (suite, "what eval.json records of the suite's environments; the baselines record every suite"),
    "canonical_env_id": (suite, "the suite's env ids; the baselines infer the suite from the id"),
    "evaluate": (suite, "the suite's protocol (A.3); the baselines evaluate every suite"),
    "Agent": (suite, "the suite's networks and action distribution"),
    "network_spec": (suite_and_kind, "MLP widths or CNN channels; the baselines build either"),
    "STUDENT_SIZES": (suite_and_kind, "Table 4's student networks of the suite; the baselines hold both kinds"),
    "corrupt_teacher_": (suite_and_kind, "the teacher's policy network: actor_mean (MLP) or actor (CNN)"),
    "distill_kl": (suite_and_kind, "Gaussian KL summed over action dimensions, or categorical KL"),
    "RunningMeanStd": (kind, "the baselines only read the teacher's frozen statistics"),
    "save_checkpoint": (
        lambda s: s if s == MULTI else kind(s),
        "the baselines have no reward normaliser and write the suite they trained; the multi-teacher script has one "
        "per game and writes its --method",
    ),
    "agent_from_checkpoint": (
        lambda s: s if s == MULTI else kind(s),
        "the baselines pick the MLP or CNN agent from the checkpoint; the multi-teacher script a --game-ids agent",
    ),
    "RESUME_MAY_CHANGE": (
        lambda s: s.startswith("ppo_teacher"),
        "the teachers' --overwrite-teacher; students' teacher evaluation flags",
    ),
    "load_teacher": (kind, "the baselines check the teacher against the suite inferred from the env id"),
}


def definitions() -> dict:
    """name -> script -> source of that top-level definition."""
    found = defaultdict(dict)
    for script in SCRIPTS:
        source = open(os.path.join(ROOT, f"{script}.py")).read()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
            else:
                continue
            found[name][script] = ast.get_source_segment(source, node)
    return found


def drifted(found: dict) -> list:
    """One message per copy that differs from the first copy of its family: the name, both scripts, a diff."""
    problems = []
    for name, copies in sorted(found.items()):
        if len(copies) < 2:
            continue
        key = INTENDED.get(name, (lambda s: "all", ""))[0]
        families = defaultdict(list)
        for script in copies:
            families[key(script)].append(script)
        for scripts in families.values():
            first = scripts[0]
            for other in scripts[1:]:
                if copies[other] != copies[first]:
                    diff = "\n".join(
                        difflib.unified_diff(
                            copies[first].splitlines(),
                            copies[other].splitlines(),
                            f"{first}.py",
                            f"{other}.py",
                            lineterm="",
                            n=1,
                        )
                    )
                    problems.append(f"{name} differs between {first}.py and {other}.py:\n{diff}")
    return problems


def test_shared_definitions_are_identical_within_their_family():
    problems = drifted(definitions())
    assert not problems, "copies drifted apart (fix every copy, or list the difference in INTENDED):\n\n" + "\n\n".join(
        problems
    )


def test_a_drifted_copy_is_named_with_a_diff():
    found = definitions()
    gae = dict(found["compute_gae"])
    gae["ppd_procgen"] = gae["ppd_procgen"].replace("gamma * gae_lambda", "gamma * gae_lambda * 0.5")
    problems = drifted({"compute_gae": gae, "make_env": found["make_env"]})
    assert len(problems) == 1 and problems[0].startswith(
        "compute_gae differs between ppo_teacher_atari.py and ppd_procgen.py:"
    )
    assert "+        last = (delta + gamma * gae_lambda * 0.5 * (1.0 - dones[t]) * last) * valid[t]" in problems[0]


# The method first, the run's plumbing after it (Args and its Arguments section stay at the top, as in CleanRL).
SECTION_ORDER = [
    "Arguments",
    "Environment",
    "Networks",
    "GAE",
    "Losses",
    "Distillation",
    "Evaluation",
    "Training",
    "Checkpoint",
    "Interruption and resume",
    "Main",
]


def sections(script: str) -> list:
    lines = open(os.path.join(ROOT, f"{script}.py")).read().splitlines()
    return [
        lines[i + 1][2:]
        for i, line in enumerate(lines[:-1])
        if line.startswith("# ----") and lines[i + 1].startswith("# ") and not lines[i + 1].startswith("# --")
    ]


def test_the_shared_sections_come_in_the_same_order():
    """`diff ppo_teacher_mujoco.py ppd_mujoco.py` shows the method only if the sections line up, and every script
    reads in SECTION_ORDER: the PPO scripts without Distillation, the baselines (their loss is the KL) without
    GAE and Losses."""
    for teacher, student in (
        ("ppo_teacher_atari", "ppd_atari"),
        ("ppo_teacher_mujoco", "ppd_mujoco"),
        ("ppo_teacher_procgen", "ppd_procgen"),
        ("student_distill", "teacher_distill"),
    ):
        assert [s for s in sections(student) if s != "Distillation"] == [
            s for s in sections(teacher) if s != "Distillation"
        ], (teacher, student)
    for script in SCRIPTS:
        absent = (
            {"Distillation"}
            if script.startswith("ppo_teacher")
            else {"GAE", "Losses"}
            if script in BASELINES
            else set()
        )
        assert sections(script) == [s for s in SECTION_ORDER if s not in absent], script


def test_every_intended_difference_is_still_a_shared_name():
    """A stale entry would hide nothing but mislead the reader."""
    shared = {name for name, copies in definitions().items() if len(copies) > 1}
    assert set(INTENDED) <= shared, set(INTENDED) - shared


def test_the_atari_scores_of_the_scripts_are_the_reports():
    """Two copies of Badia et al.'s random and human scores: the scripts' HUMAN_RANDOM_SCORES (eval.json's human-
    normalised scores) and tools/atari_human_random_scores.csv (tools/report.py's); they must not drift apart."""
    import csv

    with open(os.path.join(ROOT, "tools", "atari_human_random_scores.csv")) as f:
        rows = {
            r["game"] + "-v5": (float(r["random"]), float(r["human"]))
            for r in csv.DictReader(line for line in f if not line.startswith("#"))
        }
    copies = definitions()["HUMAN_RANDOM_SCORES"]
    assert set(copies) == {"ppo_teacher_atari", "ppd_atari", "student_distill", "teacher_distill"}
    for script in copies:
        scores = load_script(script).HUMAN_RANDOM_SCORES
        assert scores == {game: rows[game] for game in scores}, script
        assert set(load_script("ppd_atari").PAPER_ENVS) <= set(scores) <= set(rows), script


def test_the_sweeps_paper_envs_are_the_scripts():
    """tools/sweep.py's grid of the paper's envs, suite by suite, is the scripts' PAPER_ENVS."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import sweep

    assert set(sweep.PAPER_ENVS) == {"atari", "mujoco", "procgen"}
    for suite, envs in sweep.PAPER_ENVS.items():
        assert envs == load_script(f"ppd_{suite}").PAPER_ENVS == load_script(f"ppo_teacher_{suite}").PAPER_ENVS
    assert set(sweep.IMPERFECT_ENVS) | set(sweep.LAMBDA_ENVS) <= {e for envs in sweep.PAPER_ENVS.values() for e in envs}


def test_the_flags_a_resume_may_change_are_the_scripts_own():
    """RESUME_MAY_CHANGE names flags of the script's Args only (a name of another script's flag is dead text)."""
    import dataclasses

    for script in SCRIPTS:
        module = load_script(script)
        fields = {f.name for f in dataclasses.fields(module.Args)}
        assert set(module.RESUME_MAY_CHANGE) <= fields, (script, set(module.RESUME_MAY_CHANGE) - fields)


def test_every_evaluate_has_one_signature():
    """tools/evaluate.py calls every script's evaluate() one way (issue #41): the same parameters, in the same
    order, with the same defaults, in all eight."""
    signatures = {}
    for script in SCRIPTS:
        (node,) = [
            n
            for n in ast.parse(open(os.path.join(ROOT, f"{script}.py")).read()).body
            if isinstance(n, ast.FunctionDef) and n.name == "evaluate"
        ]
        signatures[script] = ([a.arg for a in node.args.args], [ast.unparse(d) for d in node.args.defaults])
    assert signatures["ppd_mujoco"] == (
        ["agent", "args", "obs_norm", "episodes", "num_envs", "seed", "device", "deterministic", "test_levels"],
        ["None", "True"],
    )
    assert all(signature == signatures["ppd_mujoco"] for signature in signatures.values()), signatures


def test_every_agent_has_one_interface():
    """tools/evaluate.py drives any checkpoint's agent one way (issue #41): every agent class of the eight scripts
    (the baselines' MlpAgent and CnnAgent included) has get_value(x), get_dist(x), act(x, deterministic=False) and
    policy_params(), and each acts as its own get_dist says."""
    for script in SCRIPTS:
        module = load_script(script)
        agents = [getattr(module, n) for n in ("Agent", "MlpAgent", "CnnAgent") if hasattr(module, n)]
        assert agents, script
        for agent in agents:
            for name, parameters in (
                ("get_value", ["self", "x"]),
                ("get_dist", ["self", "x"]),
                ("act", ["self", "x", "deterministic"]),
                ("policy_params", ["self"]),
            ):
                method = getattr(agent, name, None)
                assert method is not None, (script, agent.__name__, name)
                assert list(inspect.signature(method).parameters) == parameters, (script, agent.__name__, name)


def test_act_picks_the_mode_or_a_sample_of_get_dist():
    import torch

    module = load_script("student_distill")
    for agent, x in (
        (module.MlpAgent(module.network_spec("mujoco", "smaller"), (5,), 2), torch.randn(64, 5)),
        (
            module.CnnAgent(module.network_spec("pixels", "smaller"), (64, 64, 3), 15),
            torch.randint(0, 255, (64, 64, 64, 3), dtype=torch.uint8),
        ),
    ):
        dist = agent.get_dist(x)
        mode = dist.mean if isinstance(dist, torch.distributions.Normal) else dist.probs.argmax(-1)
        assert torch.equal(agent.act(x, deterministic=True), mode)
        torch.manual_seed(0)
        sampled = agent.act(x)
        torch.manual_seed(0)
        assert torch.equal(sampled, dist.sample()) and not torch.equal(sampled, mode)
