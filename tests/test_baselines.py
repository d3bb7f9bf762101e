"""student_distill.py and teacher_distill.py (Algorithms 2 and 3) on the three suites."""

import os

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

from conftest import (
    CANONICAL,
    ROOT,
    SUITES,
    categorical_kl,
    check_run_record,
    TINY,
    load_script,
    one_error_line,
    read_json,
    read_scalars,
    run_cli,
    run_main,
    sha256,
)

METHODS = ("student_distill", "teacher_distill")


@pytest.mark.parametrize("method", METHODS)
def test_loss_by_hand(method):
    module = load_script(method)
    args = module.Args(ent_coef=0.1, vf_coef=0.5)
    student, teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    v_student, v_teacher = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    loss, stats = module.distill_loss(
        Categorical(logits=student), Categorical(logits=teacher), v_student, v_teacher, args
    )
    q = torch.softmax(student, -1)
    kl = categorical_kl(teacher, student).mean().item()  # sample 0: (e-1)/(e+1); sample 1: 0
    assert kl == pytest.approx((np.e - 1) / (np.e + 1) / 2, rel=1e-6)
    entropy = (-(q * q.log()).sum(-1)).mean().item()
    value = ((1 - 0) ** 2 + (2 - 4) ** 2) / 2
    assert stats["value_loss"] == pytest.approx(2.5) and stats["distill_loss"] == pytest.approx(kl, rel=1e-6)
    assert loss.item() == pytest.approx(kl - 0.1 * entropy + 0.5 * value, rel=1e-6)

    mu_s, std_s, mu_t, std_t = (
        torch.tensor([[0.0, 1.0]]),
        torch.tensor([[1.0, 0.5]]),
        torch.tensor([[0.5, 1.0]]),
        torch.tensor([[0.8, 0.8]]),
    )
    loss, stats = module.distill_loss(
        Normal(mu_s, std_s),
        Normal(mu_t, std_t),
        torch.tensor([3.0]),
        torch.tensor([1.0]),
        module.Args(ent_coef=0.0, vf_coef=1.0),
    )
    kl = np.log(1 / 0.8) + (0.64 + 0.25) / 2 - 0.5 + np.log(0.5 / 0.8) + 0.64 / (2 * 0.25) - 0.5
    assert stats["distill_loss"] == pytest.approx(kl, rel=1e-6)
    assert loss.item() == pytest.approx(kl + 4.0, rel=1e-6)


@pytest.fixture(scope="module")
def decisive_teacher(teacher_runs, tmp_path_factory):
    """The tiny Hopper teacher, made to always act ~0.9 (mean 0.9, std e^-6): unlike a fresh student."""
    state = torch.load(teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt", weights_only=True)
    last = max(k for k in state["actor"] if k.startswith("actor_mean.") and k.endswith(".weight"))
    state["actor"][last].zero_()
    state["actor"][last.replace("weight", "bias")].fill_(0.9)
    state["actor"]["actor_logstd"].fill_(-6.0)
    path = tmp_path_factory.mktemp("decisive") / "teacher.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("method", METHODS)
def test_who_acts_and_one_step_per_rollout(method, decisive_teacher, tmp_path):
    steps = 4 * 5 * 6  # num_envs x num_steps x 6 updates
    run_main(
        f"{method}.py",
        [
            *TINY["mujoco"][:4],
            "--num-steps",
            "5",
            "--total-timesteps",
            steps,
            "--teacher-path",
            decisive_teacher,
            "--eval-episodes",
            "0",
            "--run-name",
            "r",
            "--dump-last-rollout",
        ],
        cwd=tmp_path,
    )
    actions = torch.load(tmp_path / "runs" / "r" / "last_rollout.pt")["actions"]
    near_teacher = ((actions - 0.9).abs() < 0.05).float().mean().item()
    if method == "teacher_distill":
        assert near_teacher == 1.0  # every action taken came from the teacher
    else:
        assert near_teacher < 0.2  # the student's own, spread-out actions
    state = load_script(method).load_checkpoint(str(tmp_path / "runs" / "r" / "checkpoint.pt"))
    assert state["update"] == 6 and state["optimizer"]["state"][0]["step"].item() == 6  # one Adam step per rollout


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("method", METHODS)
def test_end_to_end(method, suite, teacher_runs):
    work = teacher_runs[suite][0]
    size = "larger" if suite == "mujoco" else "smaller"
    flags = TINY[suite][: TINY[suite].index("--minibatch-size")] + TINY[suite][TINY[suite].index("--eval-episodes") :]
    run_main(
        f"{method}.py",
        [
            *flags,
            "--num-steps",
            "8",
            "--total-timesteps",
            4 * 8 * 4,
            "--student",
            size,
            "--run-name",
            f"{method}_{size}",
            "--eval-every",
            4 * 8 * 2,
            "--eval-every-episodes",
            1,
        ],
        cwd=work,
    )
    run_dir = work / "runs" / f"{method}_{size}"
    result = read_json(run_dir / "eval.json")
    assert result["method"] == method and result["script"] == f"{method}.py" and result["suite"] == suite
    assert result["env_id"] == CANONICAL[suite] and result["student_size"] == size
    assert result["teacher"]["path"] == f"teachers/{CANONICAL[suite]}__1.pt"
    assert result["teacher"]["evaluation"]["episodes"] == result["evaluation"]["episodes"]
    assert set(result["teacher"]) == {"path", "sha256", "corruption_sigma", "evaluation", "evaluation_train_levels"}
    assert result["teacher"]["sha256"] == sha256(work / result["teacher"]["path"])
    assert (result["evaluation_train_levels"] is not None) == (suite == "procgen")
    module = load_script(method)
    check_run_record(result, module, suite)
    agent = module.agent_from_checkpoint(module.load_checkpoint(str(run_dir / "checkpoint.pt")))
    assert agent.policy_params() == result["policy_params"]
    scalars = read_scalars(str(run_dir))
    assert len(scalars["losses/distill_loss"]) == 4 and len(scalars["losses/value_loss"]) == 4
    assert [s for s, _ in scalars["eval/episodic_return"]] == [64, 128]


def test_student_distill_learns_from_a_teacher(pendulum_teacher):
    run_main(
        "student_distill.py",
        [
            "--env-id",
            "InvertedPendulum",
            "--total-timesteps",
            "20000",
            "--eval-episodes",
            "10",
            "--student",
            "smaller",
            "--run-name",
            "sd",
        ],
        cwd=pendulum_teacher,
    )
    result = read_json(pendulum_teacher / "runs" / "sd" / "eval.json")
    assert result["teacher"]["evaluation"]["mean"] >= 500
    assert result["fraction_of_teacher"] >= 0.8, result["fraction_of_teacher"]


@pytest.mark.parametrize("method", METHODS)
def test_bad_input(method, teacher_runs, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    module = load_script(method)
    foreign = teacher_runs["atari"][0] / "teachers" / "Pong-v5__1.pt"
    cases = [
        (["--env-id", "NoSuchGame"], "unknown env id 'NoSuchGame'"),
        (
            ["--student", "huge"],
            "invalid choice 'huge' for argument '--student'. Expected one of ('smaller', 'same', 'larger')",
        ),
        (["--teacher-corruption-sigma", "-1"], "--teacher-corruption-sigma must not be negative"),
        (["--learning-rate", "0"], "--learning-rate must be positive"),
        (
            ["--env-backend", "gym3"],
            "invalid choice 'gym3' for argument '--env-backend'. Expected one of ('envpool', 'gymnasium')",
        ),
        (
            ["--seed", "9"],
            f"teacher checkpoint not found: teachers/Hopper-v4__9.pt (looked in {tmp_path / 'teachers'} "
            f"and {os.path.join(ROOT, 'teachers')}); train one into {tmp_path / 'teachers'} with: "
            f"python {os.path.join(ROOT, 'ppo_teacher_mujoco.py')} --env-id Hopper-v4 --seed 9",
        ),
        (["--teacher-path", foreign], "was trained on atari Pong-v5, not mujoco Hopper-v4"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(module, ["--env-id", "Hopper", *argv], capsys, monkeypatch)
        one_error_line(err, code, message)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("script", ["ppd_mujoco", "student_distill", "teacher_distill"])
def test_distillation_resume(script, teacher_runs):
    """A distillation run stopped after 2 updates and resumed ends at 4, in the same run folder."""
    work = teacher_runs["mujoco"][0]
    rollout = 4 * 8
    flags = ["--env-id", "Hopper", "--num-envs", 4, "--num-steps", 8, "--eval-episodes", 0, "--student", "smaller"]
    flags += ["--minibatch-size", 16] if script == "ppd_mujoco" else []
    run_main(f"{script}.py", [*flags, "--total-timesteps", 2 * rollout, "--run-name", f"resume_{script}"], cwd=work)
    checkpoint = work / "runs" / f"resume_{script}" / "checkpoint.pt"
    module = load_script(script)
    first = module.load_checkpoint(str(checkpoint))["optimizer"]["state"][0]["step"].item()
    run_main(f"{script}.py", [*flags, "--total-timesteps", 4 * rollout, "--resume", checkpoint], cwd=work)
    state = module.load_checkpoint(str(checkpoint))
    assert state["update"] == 4 and state["global_step"] == 4 * rollout
    assert state["optimizer"]["state"][0]["step"].item() == 2 * first  # the optimiser carried on
    steps = sorted({s for s, _ in read_scalars(str(checkpoint.parent))["losses/distill_loss"]})
    assert steps == [rollout, 2 * rollout, 3 * rollout, 4 * rollout]
