"""``rlfleet bench scst-toy``: does SCST raise the reward of greedy decodes? A sanity check on a
synthetic transliteration task (300 random words over 8 letters, one phoneme per letter, with a
context rule: ``a`` before ``b`` reads ``EY``): briefly XE-pretrain a small model, then run SCST
updates on its own on-policy samples and print train PER / WER of greedy decodes as it goes.

    rlfleet bench scst-toy [--xe-updates 60] [--scst-updates 150] [--lr 0.001] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from rlfleet.agents.registry import config_from_dict
from rlfleet.agents.scst.acting import ScstActing
from rlfleet.agents.scst.g2p import greedy_error_rates
from rlfleet.agents.scst.learner import ScstLearner
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.make import make_vector_env
from rlfleet.envs.spec import EnvSpec
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.codec import decode as decode_message


def toy_corpus(path: Path, words: int = 300, seed: int = 0) -> None:
    rng = random.Random(seed)
    lines = []
    for _ in range(words):
        w = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 6)))
        p = [
            "EY" if c == "a" and w[j + 1 : j + 2] == "b" else c.upper() + "H"
            for j, c in enumerate(w)
        ]
        lines.append(f"{w}\t{' '.join(p)}")
    path.write_text("\n".join(lines) + "\n")


def run(xe_updates: int, scst_updates: int, lr: float, every: int = 25) -> list[dict]:
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="scst-toy-"))
    toy_corpus(folder / "toy.tsv")
    data = {
        "run": {"algorithm": "scst"},
        "env": {"id": "Seq/G2P-v0", "envs_per_actor": 80,
                "kwargs": {"corpus": str(folder / "toy.tsv"), "dev_fraction": 0.1, "test_fraction": 0.1}},
        "model": {"embed": 16, "hidden": 32},
        "scst": {"phase": "xe", "samples": 4, "dev_words": 0},
        "learner": {"batch_size": 32, "lr": 0.01},
    }  # fmt: skip
    config = config_from_dict(data)
    venv = make_vector_env(config.env.id, 80, 1, env_kwargs=config.env.kwargs)
    env = EnvSpec.of(venv)
    xe = ScstLearner(config, env, 0)
    for _ in range(xe_updates):
        xe.prefetch_once()
        xe.learn(xe.batches.get(1.0))
    rows = np.arange(len(xe.task.train))
    out = [
        {
            "phase": "xe",
            "updates": xe_updates,
            **greedy_error_rates(xe.net, xe.task.train, rows, xe.task.max_output_len),
        }
    ]
    data["scst"]["phase"] = "scst"
    data["learner"].update(lr=lr, batch_size=16)
    config = config_from_dict(data)
    learner = ScstLearner(config, env, 0)
    learner.net.load_state_dict(xe.net.state_dict())
    acting = ScstActing(config, env, ActorSlot(0, 1, 0), 1)
    flat = np.empty(param_count(learner.net), np.float32)
    obs = venv.reset()
    for update in range(1, scst_updates + 1):
        flatten_into(learner.net, flat)
        acting.load_params(flat, learner.counters.version)  # on-policy: the current version
        while True:
            step = venv.step(acting.act(obs))
            payload = acting.observe(step)
            obs = step.obs
            if payload:
                break
        arrays = decode_message(payload[0]).arrays
        learner.learn({**arrays, "version": np.full(80, learner.counters.version)})
        if update % every == 0 or update == scst_updates:
            rates = greedy_error_rates(
                learner.net, learner.task.train, rows, learner.task.max_output_len
            )
            stats = {
                k: float(np.mean(v[-every:]))
                for k, v in learner._stats.items()
                if k.startswith("reward")
            }
            out.append({"phase": "scst", "updates": update, **rates, **stats})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rlfleet bench scst-toy", description=__doc__.splitlines()[0])
    p.add_argument("--xe-updates", type=int, default=60)
    p.add_argument("--scst-updates", type=int, default=150)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = run(args.xe_updates, args.scst_updates, args.lr)
    print(
        f"{'phase':6} {'updates':>7} {'train PER %':>11} {'train WER %':>11} {'r(sample)':>9} {'r(greedy)':>9}"
    )
    for r in rows:
        print(f"{r['phase']:6} {r['updates']:>7} {100 * r['per']:>11.2f} {100 * r['wer']:>11.2f} "
              f"{r.get('reward_sample', float('nan')):>9.3f} {r.get('reward_greedy', float('nan')):>9.3f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
