"""Datasets made in code, in the formats AgileRL's loops read (there is no dataset hub on-prem).

    python make_datasets.py offline OUT.h5 [--steps N] [--seed S]   CartPole transitions for offline RL (CQN)
    python make_datasets.py bandit OUT_DIR [--rows N] [--seed S]    features.csv and targets.csv for a bandit

The offline dataset is a rollout of a scripted CartPole controller (push towards the side the pole falls to) with
20% random actions, so that both actions and both outcomes are in it: the HDF5 layout AgileRL's
``load_offline_transitions`` reads (``observations``, ``actions``, ``rewards``, ``terminals``; the next observation
of row i is row i + 1). The bandit tables are a three-class problem on four features that a small network learns
within a few hundred steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import h5py  # type: ignore[import-untyped]
import numpy as np
import pandas as pd  # type: ignore[import-untyped]


def cartpole_rollout(out: Path, steps: int = 2000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, terminals = [], [], [], []
    for _ in range(steps):
        action = int(obs[2] + 0.5 * obs[3] > 0) if rng.random() > 0.2 else int(rng.integers(2))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminals.append(terminated or truncated)
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(out, "w") as f:
        f["observations"] = np.asarray(observations, dtype=np.float32)
        f["actions"] = np.asarray(actions, dtype=np.int64)
        f["rewards"] = np.asarray(rewards, dtype=np.float32)
        f["terminals"] = np.asarray(terminals, dtype=bool)
    return out


def bandit_tables(out_dir: Path, rows: int = 300, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4)).astype(np.float32)
    targets = (features[:, 0] > 0).astype(int) + (features[:, 1] > 0.5).astype(int)
    out_dir.mkdir(parents=True, exist_ok=True)
    f, t = out_dir / "features.csv", out_dir / "targets.csv"
    pd.DataFrame(features).to_csv(f, index=False)
    pd.DataFrame(targets).to_csv(t, index=False)
    return f, t


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make_datasets.py")
    parser.add_argument("kind", choices=["offline", "bandit"])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "offline":
        print(cartpole_rollout(Path(args.out), args.steps, args.seed))
    else:
        print(*bandit_tables(Path(args.out), args.rows, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
