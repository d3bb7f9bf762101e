"""multi_teacher_procgen.py (issue #39): one student, one teacher per Procgen game, through the script's own loop."""

import json

import pytest
import torch

from conftest import load_script, one_error_line, read_json, read_scalars, run_main, run_script

SCRIPT = "multi_teacher_procgen.py"
TINY = "--num-envs 4 --num-steps 32 --minibatch-size 64 --eval-episodes 2 --eval-envs 2 --total-timesteps 512".split()
FAVOURED = {"coinrun": 3, "starpilot": 7}  # each game's teacher plays its own action


@pytest.fixture(scope="module")
def tiny_teacher(teacher_runs):
    return teacher_runs["procgen"][0] / "teachers" / "starpilot__1.pt"


@pytest.fixture(scope="module")
def favouring_teachers(tiny_teacher, tmp_path_factory):
    """Two teachers of the tiny network, coinrun's and starpilot's, whose policies put 99.5% on their game's own
    action of FAVOURED (zero weights, logit 8 on it), whatever the frames."""
    state, folder, paths = torch.load(tiny_teacher, weights_only=True), tmp_path_factory.mktemp("favouring"), []
    for game, action in FAVOURED.items():
        teacher = {**state, "env_id": game, "actor": {k: v.clone() for k, v in state["actor"].items()}}
        teacher["actor"]["actor.1.weight"].zero_()
        teacher["actor"]["actor.1.bias"].zero_()
        teacher["actor"]["actor.1.bias"][action] = 8.0
        torch.save(teacher, folder / f"{game}.pt")
        paths.append(folder / f"{game}.pt")
    return paths


def run_two_games(teachers, cwd, *flags):
    """A tiny PPD run of the two FAVOURED games (8 envs, 4 each) into cwd/runs/r; flags add to these or replace
    them (tyro: the last value of a flag wins)."""
    base = ["--env-ids", *FAVOURED, "--teacher-paths", *teachers, "--num-envs", 8, "--num-steps", 16]
    base += ["--minibatch-size", 64, "--eval-episodes", 2, "--eval-envs", 2, "--run-name", "r"]
    return run_main(SCRIPT, [*base, *flags], cwd=cwd)


def final_weights(run_dir) -> dict:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return {**state["actor"], **state["critic"]}


@pytest.mark.parametrize("method, single_flags", [("ppd", []), ("ppo", ["--distill-lambda", "0"])])
def test_one_game_trains_exactly_as_the_single_teacher_script(method, single_flags, tiny_teacher, tmp_path):
    """N = 1: the same final weights, to the bit, and the same evaluation returns as ppd_procgen.py (multi-task
    PPO as PPD with lambda 0), on a fixed seed."""
    flags = [*TINY, "--student", "smaller"]
    run_main(
        "ppd_procgen.py",
        [*flags, "--env-id", "starpilot", "--teacher-path", tiny_teacher, *single_flags, "--run-name", "single"],
        cwd=tmp_path,
    )
    run_main(
        SCRIPT,
        [*flags, "--env-ids", "starpilot", "--teacher-paths", tiny_teacher, "--method", method, "--run-name", "multi"],
        cwd=tmp_path,
    )
    single, multi = final_weights(tmp_path / "runs" / "single"), final_weights(tmp_path / "runs" / "multi")
    assert single.keys() == multi.keys() and all(torch.equal(single[k], multi[k]) for k in single)
    one, several = (
        read_json(tmp_path / "runs" / "single" / "eval.json"),
        read_json(tmp_path / "runs" / "multi" / "eval.json"),
    )
    game = several["games"]["starpilot"]
    for key in ("evaluation", "evaluation_train_levels"):
        assert game[key]["returns"] == one[key]["returns"]
        assert game["teacher"][key]["returns"] == one["teacher"][key]["returns"]


@pytest.mark.parametrize("method", ["ppd", "student_distill", "teacher_distill"])
def test_each_game_learns_its_own_teachers_action(method, favouring_teachers, tmp_path):
    """Two games, two teachers that favour different actions: after a few updates the student picks each game's
    action on that game's slots (p > 0.9) and not the other game's (p < 0.1); the acting policy is the slot's
    teacher for teacher-distill, the student otherwise."""
    steps = (
        ["--num-steps", "16", "--minibatch-size", "64", "--total-timesteps", 1280]
        if method == "ppd"
        else ["--total-timesteps", 3200]
    )  # the baselines: one gradient step per 5-step rollout (A.3)
    run_main(
        SCRIPT,
        [
            "--env-ids",
            *FAVOURED,
            "--teacher-paths",
            *favouring_teachers,
            "--method",
            method,
            "--num-envs",
            8,
            *steps,
            "--learning-rate",
            "0.001",
            "--student",
            "smaller",
            "--eval-episodes",
            0,
            "--run-name",
            "r",
            "--dump-last-rollout",
        ],
        cwd=tmp_path,
    )
    run_dir = tmp_path / "runs" / "r"
    agent = load_script("multi_teacher_procgen").agent_from_checkpoint(
        torch.load(run_dir / "checkpoint.pt", weights_only=True)
    )
    rollout = torch.load(run_dir / "last_rollout.pt", weights_only=True)
    games, actions = rollout["games"].reshape(-1), rollout["actions"].reshape(-1)
    assert games.tolist() == ([0] * 4 + [1] * 4) * (len(games) // 8)  # slots 0-3 coinrun, 4-7 starpilot
    with torch.no_grad():
        probs = agent.get_dist(rollout["obs"].reshape(-1, 64, 64, 3)).probs
    for g, (action, other) in enumerate([(3, 7), (7, 3)]):
        assert probs[games == g, action].min() > 0.9, (method, g, probs[games == g, action].min())
        assert probs[games == g, other].max() < 0.1, (method, g)
    # teacher-distill's slots act with their teacher (99.5% on its action), the others with the student, who has
    # learnt it by now
    assert (actions == torch.where(games == 0, 3, 7)).float().mean() > (0.95 if method == "teacher_distill" else 0.8)


def test_a_run_reports_each_game(favouring_teachers, tmp_path):
    """eval.json: per game the student's and its teacher's evaluations on test and training levels with their envs,
    the fractions and their geometric mean; tensorboard: returns, KL, lambda and reward scale per game."""
    run_two_games(favouring_teachers, tmp_path, "--num-steps", 32, "--total-timesteps", 1024, "--lambda-fade")
    result = read_json(tmp_path / "runs" / "r" / "eval.json")
    assert result["method"] == "ppd" and result["env_ids"] == list(FAVOURED) and result["env_id"] == "coinrun+starpilot"
    assert [env["env_id"] for env in result["training_envs"]] == list(FAVOURED)
    fractions = {"": [], "_train_levels": []}
    for game, path in zip(FAVOURED, favouring_teachers):
        record = result["games"][game]
        assert record["teacher"]["path"] == str(path) and record["teacher"]["corruption_sigma"] == 0.0
        for key, levels in (("evaluation", "test"), ("evaluation_train_levels", "train")):
            student, teacher = record[key], record["teacher"][key]
            assert student["levels"] == teacher["levels"] == levels and student["episodes"] == 2
            assert student["envs"]["env_id"] == teacher["envs"]["env_id"] == game
            suffix = key[len("evaluation") :]
            expected = student["mean"] / teacher["mean"] if teacher["mean"] else None
            assert record["fraction_of_teacher" + suffix] == expected
            fractions[suffix].append(expected)
        saved = json.loads((tmp_path / "runs" / "r" / game / "teacher_evaluation.json").read_text())
        assert saved["evaluation"]["returns"] == record["teacher"]["evaluation"]["returns"]
    for suffix, values in fractions.items():
        gm = load_script("multi_teacher_procgen").geometric_mean(values)
        assert result["geometric_mean_fraction" + suffix] == gm
    scalars = read_scalars(str(tmp_path / "runs" / "r"))
    for game in FAVOURED:
        for tag in ("losses/distill_kl", "charts/distill_lambda", "charts/reward_scale"):
            assert len(scalars[f"{tag}/{game}"]) == 1024 // (8 * 32), tag
        assert all(0.0 <= value <= 1.0 for _, value in scalars[f"charts/distill_lambda/{game}"])
    assert any(tag.startswith("charts/episodic_return/") for tag in scalars)
    state = torch.load(tmp_path / "runs" / "r" / "checkpoint.pt", weights_only=True)
    assert len(state["return_rms"]) == len(state["reward_returns"]) == 2  # a reward normaliser per game
    assert [len(returns) for returns in state["reward_returns"]] == [4, 4]


def test_lambda_fade_is_qdaggers_rule():
    fade = load_script("multi_teacher_procgen").lambda_fade
    assert fade([], 10.0) == 1.0  # no episode yet: lambda as given
    assert fade([2.0, 4.0], 10.0) == pytest.approx(0.7)  # 1 - 3 / 10
    assert fade([12.0], 10.0) == 0.0  # the student has caught its teacher: the term is off
    assert fade([5.0], 0.0) == 1.0  # a teacher scoring nothing gives no ratio


def test_bad_input_is_one_line(favouring_teachers, tiny_teacher, tmp_path):
    cases = [
        (["--env-ids", "coinrun", "coinrun"], "--env-ids must name each game once"),
        (["--env-ids", "coinrun", "starpilot", "--num-envs", "5"], "--num-envs 5 does not split evenly over 2 games"),
        (
            ["--env-ids", "coinrun", "starpilot", "--teacher-paths", tiny_teacher],
            "--teacher-paths names 1 teachers for 2",
        ),
        (["--env-ids", "coinrun", "--teacher-paths", tmp_path / "none.pt"], "teacher checkpoint not found"),
        (
            ["--env-ids", *FAVOURED, "--teacher-paths", *favouring_teachers, "--method", "ppo", "--lambda-fade"],
            "--lambda-fade fades PPD's term",
        ),
        (
            ["--env-ids", "coinrun", "--teacher-paths", tiny_teacher],
            "was trained on procgen starpilot, not procgen coinrun",
        ),
    ]
    for argv, message in cases:
        proc = run_script(SCRIPT, [*TINY, *argv], cwd=tmp_path, check=False)  # the last of a flag given twice wins
        assert proc.returncode == 2, (argv, proc.stderr)
        assert message in one_error_line(proc.stderr, proc.returncode), argv


def test_a_resumed_run_continues_each_games_statistics(favouring_teachers, tmp_path):
    """--resume: each game's reward statistics come back from the checkpoint and go on counting, and each teacher's
    evaluation is read back from the game's folder instead of played again."""
    run_two_games(favouring_teachers, tmp_path, "--total-timesteps", 256)
    checkpoint = tmp_path / "runs" / "r" / "checkpoint.pt"
    first = torch.load(checkpoint, weights_only=True)
    proc = run_main(SCRIPT, ["--resume", tmp_path / "runs" / "r", "--total-timesteps", 512], cwd=tmp_path)
    for game in FAVOURED:
        saved = tmp_path / "runs" / "r" / game / "teacher_evaluation.json"
        assert f"teacher evaluation of {game} (from {saved}): 2 episodes" in proc.stdout
    again = torch.load(checkpoint, weights_only=True)
    assert again["global_step"] == 512 and read_json(tmp_path / "runs" / "r" / "eval.json")["total_timesteps"] == 512
    for before, after in zip(first["return_rms"], again["return_rms"]):
        assert after["count"] == pytest.approx(before["count"] + 2 * 16 * 4)  # two more rollouts, 4 envs per game


def test_evaluate_plays_one_game_of_a_multi_teacher_student(favouring_teachers, tiny_teacher, tmp_path):
    """tools/evaluate.py --game: a multi-teacher checkpoint evaluated on one of its games gives the returns its own
    eval.json recorded for that game, return for return; without --game, or with --game on a single-game
    checkpoint, one line says what to do."""
    run_two_games(favouring_teachers, tmp_path, "--eval-episodes", 3, "--total-timesteps", 128)
    checkpoint = tmp_path / "runs" / "r" / "checkpoint.pt"
    recorded = read_json(tmp_path / "runs" / "r" / "eval.json")["games"]
    for game in FAVOURED:
        for levels, key in (("test", "evaluation"), ("train", "evaluation_train_levels")):
            out = tmp_path / f"{game}_{levels}.json"
            run_main(
                "tools/evaluate.py",
                ["--checkpoint", checkpoint, "--game", game, "--episodes", 3, "--levels", levels, "--out", out],
                cwd=tmp_path,
            )
            result = read_json(out)
            assert result["env_id"] == game and result["evaluation"]["envs"]["env_id"] == game
            assert result["evaluation"]["returns"] == recorded[game][key]["returns"], (game, levels)
    for argv, message in (
        ([checkpoint], "is a multi-teacher student of coinrun, starpilot: name one with --game"),
        ([tiny_teacher, "--game", "coinrun"], "--game picks a game of a multi-teacher checkpoint"),
    ):
        proc = run_script("tools/evaluate.py", ["--checkpoint", *argv], cwd=tmp_path, check=False)
        assert message in one_error_line(proc.stderr, proc.returncode)


def test_game_ids_are_an_input_the_student_learns(favouring_teachers, tmp_path):
    """--game-ids: a learnt vector per game, added to the trunk's features, changes the student's policy on the same
    frames with the game; the vectors learn (each game's its own) and travel in the checkpoint, which
    tools/evaluate.py --game evaluates as the run did."""
    run_two_games(
        favouring_teachers,
        tmp_path,
        "--total-timesteps",
        512,
        "--student",
        "smaller",
        "--game-ids",
        "--dump-last-rollout",
    )
    run_dir = tmp_path / "runs" / "r"
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    vectors = state["actor"]["game_vectors"]
    assert state["network"]["num_games"] == 2 and vectors.shape == (2, state["network"]["fc_size"])
    assert vectors.abs().sum(1).min() > 0 and not torch.equal(vectors[0], vectors[1])
    agent = load_script("multi_teacher_procgen").agent_from_checkpoint(state)
    frames = torch.load(run_dir / "last_rollout.pt", weights_only=True)["obs"][:, 0]  # coinrun's first slot
    with torch.no_grad():
        logits = []
        for game in (0, 1):
            agent.games = torch.tensor(game)
            logits.append(agent.get_dist(frames).logits)
    assert not torch.allclose(logits[0], logits[1])
    run_main(
        "tools/evaluate.py",
        [
            "--checkpoint",
            run_dir / "checkpoint.pt",
            "--game",
            "starpilot",
            "--episodes",
            2,
            "--out",
            tmp_path / "e.json",
        ],
        cwd=tmp_path,
    )
    recorded = read_json(run_dir / "eval.json")["games"]["starpilot"]["evaluation"]["returns"]
    assert read_json(tmp_path / "e.json")["evaluation"]["returns"] == recorded
