"""Time one PPD minibatch step (forward, Eq. 2 loss, backward, clipping, Adam) with the scripts' own pieces:
plain Adam against fused Adam, and optionally the loss under torch.compile. Variants run interleaved, so a
load that changes during the measurement affects them alike.

    OMP_NUM_THREADS=1 python benchmarks/update_step.py              # Mujoco larger student, minibatch 512
    OMP_NUM_THREADS=1 python benchmarks/update_step.py --compile    # also torch.compile of the loss
"""

import os
import sys
import time
from dataclasses import dataclass

import torch
import tyro
from torch.distributions import Normal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ppd_mujoco as ppd  # noqa: E402


@dataclass
class Args:
    student: str = "larger"
    """student size (Table 4)"""
    minibatch_size: int = 512
    """samples per minibatch"""
    steps: int = 50
    """minibatch steps per timing"""
    repeats: int = 5
    """timings per variant (the median is reported)"""
    compile: bool = False
    """also time the loss compiled with torch.compile"""


def main() -> None:
    args = tyro.cli(Args)
    torch.manual_seed(0)
    n, obs_dim, act_dim = args.minibatch_size, 11, 3  # Hopper-v4
    obs, actions, teacher_means = torch.randn(n, obs_dim), torch.randn(n, act_dim), torch.randn(n, act_dim)
    old_logprob, advantages, returns = torch.randn(n), torch.randn(n), torch.randn(n)
    script_args = ppd.Args()

    def loss_of(agent):
        dist = agent.get_dist(obs)
        newlogprob, entropy = dist.log_prob(actions).sum(-1), dist.entropy().sum(-1)
        loss, ratio, _ = ppd.ppo_loss(
            newlogprob, old_logprob, advantages, entropy, agent.get_value(obs), returns, script_args
        )
        kl = ppd.distill_kl(dist, Normal(teacher_means, torch.ones(act_dim)), "forward")
        return loss + ppd.ppd_loss(kl, ratio, script_args.clip_coef)

    variants = {"Adam": (False, loss_of), "Adam, fused": (True, loss_of)}
    if args.compile:
        variants["Adam, fused, compiled loss"] = (True, torch.compile(loss_of))
    setups = {}
    for name, (fused, fn) in variants.items():
        agent = ppd.Agent(ppd.network_spec(ppd.STUDENT_SIZES[args.student]), (obs_dim,), act_dim)
        setups[name] = (agent, torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5, fused=fused), fn)

    def step(agent, optimizer, fn):
        loss = fn(agent)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(agent.parameters(), script_args.max_grad_norm)
        optimizer.step()

    for setup in setups.values():  # warm-up (and compilation)
        for _ in range(20):
            step(*setup)
    timings = {name: [] for name in setups}
    for _ in range(args.repeats):
        for name, setup in setups.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(*setup)
            timings[name].append((time.perf_counter() - start) / args.steps * 1000)
    print(f"PPD minibatch step, {args.student} student, minibatch {n}, {torch.get_num_threads()} torch threads")
    for name, values in timings.items():
        values.sort()
        print(f"{name}: median {values[len(values) // 2]:.2f} ms (min {values[0]:.2f}, max {values[-1]:.2f})")


if __name__ == "__main__":
    main()
