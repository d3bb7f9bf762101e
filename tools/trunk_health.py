"""Is a pixel policy still looking at the screen? The live channels of its CNN trunks, and how much its action
logits vary between states.

A channel is live when its ReLU output is positive somewhere on at least one frame. A trunk whose channels have
all died gives every state the same features, so its policy ignores the screen and cannot learn again: the first
Pong teacher here (separate actor and critic trunks) ended that way (docs/teachers.md). The frames come from the
checkpoint's own game (the teacher script's preprocessing; Procgen: the training levels), played with actions
sampled from the checkpoint's own policy.

    python tools/trunk_health.py --checkpoint runs/pixels/Pong-v5__teacher__1/checkpoint.pt
    python tools/trunk_health.py --checkpoint teachers/coinrun__1.pt --steps 200 --num-envs 4

Any pixel checkpoint of the scripts works (teachers, PPD and baseline students): the checkpoint names the script
that wrote it, and this tool builds the network with that script's agent_from_checkpoint. It prints one line per
ReLU layer of each trunk (a shared trunk once) and the logits' standard deviation over the frames; --out writes
the same as JSON.
"""

import contextlib
import importlib
import io
import json
import os
import sys
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import tyro

SCRIPT = "tools/trunk_health.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from entry import UsageError, import_script  # noqa: E402  (tools/ is sys.path[0] when a tool runs)


@dataclass
class Args:
    checkpoint: str
    """a pixel checkpoint of this project (a teacher .pt or a run's checkpoint.pt; Atari or Procgen)"""
    steps: int = 100
    """steps played per env to collect the frames"""
    num_envs: int = 4
    """parallel envs"""
    seed: int = 12345
    """env and action-sampling seed"""
    out: Optional[str] = None
    """also write the result as JSON to this file"""
    cuda: bool = True
    """run the network on the GPU when one is visible (the frames are played the same either way)"""


def live_channels(trunk: nn.Sequential, pixels: torch.Tensor) -> list[dict]:
    """Per nn.ReLU of the trunk, in order: its live channels (conv maps: per channel; flat: per unit). The
    trunk runs as itself; blocks that are not nn.Sequential (IMPALA's residual blocks) run whole."""
    layers = []

    def walk(sequential: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for module in sequential.children():
            x = walk(module, x) if isinstance(module, nn.Sequential) else module(x)
            if isinstance(module, nn.ReLU):
                alive = (x.amax(dim=(0, 2, 3)) if x.dim() == 4 else x.amax(dim=0)) > 0
                layers.append({"layer": len(layers) + 1, "live": int(alive.sum()), "channels": int(alive.numel())})
        return x

    walk(trunk, pixels)
    return layers


def frames_of(module, state: dict, args: Args, device: torch.device) -> torch.Tensor:
    """Frames of the checkpoint's game from the teacher script of its suite, played by its own policy."""
    suite, env_id = state["suite"], state["env_id"]
    teacher_script = importlib.import_module(f"ppo_teacher_{suite}")
    if suite == "atari":
        envs = teacher_script.make_env(env_id, args.num_envs, args.seed, 27_000)
    else:
        saved = state.get("args", {})
        envs = teacher_script.make_env(
            env_id,
            args.num_envs,
            args.seed,
            saved.get("num_levels", 200),
            saved.get("start_level", 0),
            saved.get("distribution_mode", "easy"),
        )
    agent = module.agent_from_checkpoint(state).to(device)
    generator = torch.Generator().manual_seed(args.seed)  # on the CPU: the same actions on any device
    obs, _ = envs.reset()
    frames = []
    for _ in range(args.steps):
        x = torch.as_tensor(obs)
        frames.append(x)
        with torch.no_grad():
            probs = agent.get_dist(x.to(device)).probs.cpu()
        obs = envs.step(torch.multinomial(probs, 1, generator=generator).squeeze(-1).numpy())[0]
    envs.close()
    return torch.cat(frames)


def health(args: Args) -> dict:
    if args.steps < 1 or args.num_envs < 1:
        raise UsageError("--steps and --num-envs must be at least 1")
    if not os.path.isfile(args.checkpoint):
        raise UsageError(f"checkpoint not found: {args.checkpoint}")
    try:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        script = state["script"]
    except Exception as e:
        raise UsageError(f"cannot read {args.checkpoint} as a checkpoint of this project ({type(e).__name__})")
    if state.get("suite") not in ("atari", "procgen"):
        raise UsageError(
            f"{args.checkpoint} is a {state.get('suite')} checkpoint; this tool reads pixel policies (Atari, Procgen)"
        )
    with contextlib.redirect_stderr(io.StringIO()):  # envpool's import banner
        module = import_script(script, state.get("script_path"))
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    frames = frames_of(module, state, args, device)
    agent = module.agent_from_checkpoint(state).to(device)
    with torch.no_grad():
        pixels = agent.pixels(frames.to(device))
        shared = agent.actor[0] is agent.critic[0]
        trunks = {"shared": agent.actor[0]} if shared else {"actor": agent.actor[0], "critic": agent.critic[0]}
        result = {
            "checkpoint": args.checkpoint,
            "script": script,
            "env_id": state["env_id"],
            "device": str(device),
            "frames": len(frames),
            "trunks": {name: live_channels(t, pixels) for name, t in trunks.items()},
            "logit_std": float(agent.actor(pixels).std(dim=0).mean()),
        }
    return result


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n\n")[0])
    try:
        result = health(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{result['checkpoint']} ({result['env_id']}, {result['frames']} frames, on {result['device']})")
    for name, layers in result["trunks"].items():
        print(
            f"{name} trunk: "
            + ", ".join(f"layer {layer['layer']} {layer['live']}/{layer['channels']} live" for layer in layers)
        )
    print(
        f"action logits' std over the frames (mean over actions): {result['logit_std']:.4f}"
        + ("  <- the policy ignores the screen" if result["logit_std"] == 0 else "")
    )
    if args.out:
        tmp = f"{args.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
