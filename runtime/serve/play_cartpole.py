"""Plays Gymnasium CartPole-v1 through an Arena inference endpoint with the platform's own client.

    python play_cartpole.py --url URL --key KEY --episodes N --seed S
    python play_cartpole.py --episodes N --seed S --random

The episodes run side by side: each step is one batched ``agilerl.arena.Agent.get_action`` call over the episodes
still running, so the endpoint is driven the way the platform's users drive it. Episode ``i`` starts from
``env.reset(seed=S + i)``, so a served policy and ``--random`` (a NumPy generator seeded with ``S``, no endpoint)
face the same starts. Prints one JSON line on stdout:

    {"policy": "served", "episodes": N, "mean_length": 187.3, "lengths": [...], "requests": 500}

An episode's length is its return (CartPole pays 1 per step; CartPole-v1 truncates at 500). A failing request ends
the script with status 1 and the client's error on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import numpy.typing as npt

Observations = npt.NDArray[np.float32]
Policy = Callable[[Observations], list[int]]


def play(policy: Policy, episodes: int, seed: int) -> list[int]:
    envs = [gym.make("CartPole-v1") for _ in range(episodes)]
    try:
        obs = [np.asarray(env.reset(seed=seed + i)[0], dtype=np.float32) for i, env in enumerate(envs)]
        lengths = [0] * episodes
        running = list(range(episodes))
        while running:
            actions = policy(np.stack([obs[i] for i in running]))
            still: list[int] = []
            for i, action in zip(running, actions, strict=True):
                o, _, terminated, truncated, _ = envs[i].step(action)
                obs[i] = np.asarray(o, dtype=np.float32)
                lengths[i] += 1
                if not (terminated or truncated):
                    still.append(i)
            running = still
        return lengths
    finally:
        for env in envs:
            env.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Plays CartPole-v1 through an Arena inference endpoint, or at random.")
    parser.add_argument("--url", help="the endpoint, e.g. http://127.0.0.1:8000 (not with --random)")
    parser.add_argument("--key", help="the deployment's API key (default: the client's own ARENA_API_KEY)")
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--random", action="store_true", help="play a seeded random policy instead of the endpoint")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.random == (args.url is not None):
        parser.error("give --url, or --random")

    requests = 0
    if args.random:
        rng = np.random.default_rng(args.seed)
        lengths = play(lambda obs: [int(a) for a in rng.integers(0, 2, size=len(obs))], args.episodes, args.seed)
    else:
        # Imported here: --random needs no client.
        from agilerl.arena import Agent

        try:
            # The client reads /status first, as the platform's does: an endpoint that is not an RL agent fails here.
            with Agent(args.url, api_key=args.key) as agent:

                def served(obs: Observations) -> list[int]:
                    nonlocal requests
                    requests += 1
                    action, _ = agent.get_action(obs, batched=True)
                    return [int(a) for a in np.asarray(action).reshape(len(obs))]

                lengths = play(served, args.episodes, args.seed)
        except Exception as exc:  # noqa: BLE001 - whatever the client raises is the answer, reported plainly
            print(f"play_cartpole: {args.url} after {requests} requests: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    result = {
        "policy": "random" if args.random else "served",
        "episodes": args.episodes,
        "mean_length": sum(lengths) / len(lengths),
        "lengths": lengths,
        "requests": requests,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
