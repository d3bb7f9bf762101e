"""One minibatch update of each CNN script beside the bare forward + backward of the same networks (issue #20).

For each network, interleaved so that a changing load affects every variant alike, the median time of:
- bare: actor and critic forward on the minibatch and one backward pass (no loss terms, no optimiser);
- ppo: ppo_teacher_{suite}.py's update step (PPO-clip loss, gradient clipping, fused Adam);
- ppd: ppd_{suite}.py's (the same plus Eq. 2's distillation term against stored teacher logits);
- distill: student_distill.py's / teacher_distill.py's (KL + value regression onto stored teacher outputs).
Each uses the scripts' own Agent, losses and optimiser settings; inputs are random uint8 frames.

    OMP_NUM_THREADS=1 python benchmarks/cnn_update.py --suite atari --networks nature512 teacher
    OMP_NUM_THREADS=1 python benchmarks/cnn_update.py --suite procgen --networks smaller teacher
"""

import importlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Literal

import torch
import tyro
from torch.distributions import Categorical

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NETWORKS = {  # name -> (arch, channels, fc_size)
    "teacher": ("impala", (16, 32, 32), 256),  # A.2's teacher, Table 4's "same"
    "nature512": ("nature", (32, 64, 64), 512),  # the Nature-CNN teacher trained here for Pong (issue #20)
    "smaller": ("nature", (32, 64, 64), 64),  # Table 4's students
    "larger": ("impala", (32, 64, 64), 1024),
}


@dataclass
class Args:
    suite: Literal["atari", "procgen"] = "atari"
    """Atari frames (4, 84, 84), 6 actions; or Procgen frames (64, 64, 3), 15 actions"""
    networks: tuple[str, ...] = ("nature512", "teacher")
    """networks to time: teacher (IMPALA 16-32-32/256), nature512, smaller, larger"""
    trunks: tuple[Literal["shared", "separate"], ...] = ("shared", "separate")
    """actor and critic on one CNN trunk (the teachers' --shared-trunk) and/or a trunk each (Table 4's students)"""
    minibatch_size: int = 512
    """samples per minibatch"""
    steps: int = 3
    """minibatch steps per timing"""
    repeats: int = 3
    """timings per variant (the median is reported)"""


def main() -> None:
    args = tyro.cli(Args)
    unknown = set(args.networks) - set(NETWORKS)
    if unknown:
        print(
            f"error: unknown --networks {', '.join(sorted(unknown))}; choose from {', '.join(NETWORKS)}",
            file=sys.stderr,
        )
        sys.exit(2)
    ppo = importlib.import_module(f"ppo_teacher_{args.suite}")
    ppd = importlib.import_module(f"ppd_{args.suite}")
    sd = importlib.import_module("student_distill")
    obs_shape, n_actions = ((4, 84, 84), 6) if args.suite == "atari" else ((64, 64, 3), 15)
    n = args.minibatch_size
    torch.manual_seed(0)
    obs = torch.randint(0, 256, (n, *obs_shape), dtype=torch.uint8)
    actions = torch.randint(0, n_actions, (n,))
    old_logprob, advantages, returns = -torch.rand(n) - 1.0, torch.randn(n), torch.randn(n)
    teacher_logits, teacher_values = torch.randn(n, n_actions), torch.randn(n)

    def bare(agent):
        _, logprob, _, value = agent.get_action_and_value(obs, actions)
        return logprob.sum() + value.sum()

    def ppo_step(agent):
        _, logprob, entropy, value = agent.get_action_and_value(obs, actions)
        return ppo.ppo_loss(logprob, old_logprob, advantages, entropy, value, returns, ppo.Args())[0]

    def ppd_step(agent):
        dist, value = agent.get_dist_and_value(obs)
        loss, ratio, _ = ppd.ppo_loss(
            dist.log_prob(actions), old_logprob, advantages, dist.entropy(), value, returns, ppd.Args()
        )
        kl = ppd.distill_kl(dist, Categorical(logits=teacher_logits, validate_args=False), "forward")
        return loss + ppd.ppd_loss(kl, ratio, 0.2)

    def distill_step(agent):
        dist, value = agent.get_dist_and_value(obs)
        teacher = Categorical(logits=teacher_logits, validate_args=False)
        return sd.distill_loss(dist, teacher, value, teacher_values, sd.Args())[0]

    threads = torch.get_num_threads()
    print(
        f"{args.suite}: one minibatch of {n}, {threads} torch thread{'s' * (threads != 1)}; median ms "
        f"(x the bare forward + backward)"
    )
    print("| network | bare | ppo | ppd | distill |")
    print("|---|---|---|---|---|")
    for name, trunk in ((name, trunk) for name in args.networks for trunk in args.trunks):
        spec = ppo.network_spec(*NETWORKS[name], shared_trunk=trunk == "shared")
        variants = {}
        for variant, fn, module in (
            ("bare", bare, ppo),
            ("ppo", ppo_step, ppo),
            ("ppd", ppd_step, ppd),
            ("distill", distill_step, ppd),
        ):
            agent = module.Agent(spec, obs_shape, n_actions)
            optimizer = torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5, fused=True)
            variants[variant] = (agent, optimizer, fn)

        def step(agent, optimizer, fn, variant):
            loss = fn(agent)
            if variant == "bare":
                loss.backward()
                agent.zero_grad()
                return
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
            optimizer.step()

        for variant, setup in variants.items():  # warm-up
            step(*setup, variant)
        timings = {variant: [] for variant in variants}
        for _ in range(args.repeats):
            for variant, setup in variants.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    step(*setup, variant)
                timings[variant].append((time.perf_counter() - start) / args.steps * 1000)
        medians = {v: sorted(t)[len(t) // 2] for v, t in timings.items()}
        cells = [f"{medians['bare']:.0f}"] + [
            f"{medians[v]:.0f} ({medians[v] / medians['bare']:.2f}x)" for v in ("ppo", "ppd", "distill")
        ]
        print(
            f"| {name} {'/'.join(map(str, NETWORKS[name][1]))}/{NETWORKS[name][2]}, {trunk} trunk | "
            + " | ".join(cells)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
