"""CleanRL's --track: a Weights & Biases run with the args as config and the tensorboard scalars synced,
tested offline (WANDB_MODE=offline, no network); without --track, wandb is never imported."""

import glob
import json
import os
import struct
import subprocess
import sys

import pytest

from conftest import ROOT, TINY, read_scalars

FLAGS = [*TINY["mujoco"], "--student", "smaller", "--total-timesteps", 2 * 4 * 64]


def wandb_records(path: str) -> list:
    """The protobuf records of an offline run's .wandb file: a ':W&B' header (7 bytes), then LevelDB-style log
    records (crc32, length, type; FULL = 1 or FIRST/MIDDLE/LAST = 2/3/4) in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, chunks, records = 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7]) if left >= 7 else (0, 0)
        if length == 0 and kind == 0:  # the zero padding at the end of a block
            pos += left
            continue
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def run(argv, cwd, env_extra=None):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("script", ["ppd_mujoco.py", "student_distill.py"])
def test_track_logs_the_config_and_the_scalars_offline(script, tmp_path, teacher_runs):
    teacher = teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"
    flags = (
        FLAGS
        if script == "ppd_mujoco.py"
        else [
            "--env-id",
            "Hopper",
            "--num-envs",
            4,
            "--num-steps",
            8,
            "--total-timesteps",
            3 * 4 * 8,
            "--eval-episodes",
            1,
            "--student",
            "smaller",
        ]
    )
    proc = run(
        [
            os.path.join(ROOT, script),
            *flags,
            "--teacher-path",
            teacher,
            "--track",
            "--wandb-project-name",
            "ppd-tests",
            "--run-name",
            "tracked",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    offline = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(offline) == 1, os.listdir(tmp_path)
    records = wandb_records(offline[0])
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    config = {item.key: json.loads(item.value_json) for item in run_record.config.update}
    assert config["student"] == "smaller" and config["env_id"] == "Hopper-v4" and config["track"] is True
    assert config["teacher_path"] == str(teacher) and run_record.project == "ppd-tests"
    history = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    scalars = read_scalars(str(tmp_path / "runs" / "tracked"))
    for tag in ("charts/SPS", "losses/distill_loss" if script == "ppd_mujoco.py" else "losses/value_loss"):
        synced = [(row["global_step"], row[tag]) for row in history if tag in row]
        assert synced == [(step, pytest.approx(value, rel=1e-6)) for step, value in scalars[tag]], tag


def test_without_track_wandb_is_never_imported(tmp_path, teacher_runs):
    teacher = teacher_runs["mujoco"][0] / "teachers" / "Hopper-v4__1.pt"
    argv = ["ppd_mujoco.py", *map(str, FLAGS), "--teacher-path", str(teacher), "--run-name", "untracked"]
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); sys.argv = {argv!r}\n"
        "import ppd_mujoco\n"
        "try:\n    ppd_mujoco.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('wandb imported:', 'wandb' in sys.modules)"
    )
    proc = run(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "wandb imported: False"
    assert not (tmp_path / "wandb").exists()
