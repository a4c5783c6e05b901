"""Actor policy inference, fp32 vs int8, on a trained Ape-X checkpoint (``actor.int8``).

    rlfleet bench actor-int8 --run RUN [--episodes 30] [--seconds 4] [--batch K] [--json PATH]

The Q-network is timed at the actors' batch size (the run's ``env.envs_per_actor``, or
``--batch``) on observations the greedy policy meets, fp32 and int8 alternating call by call:
int8 with the first layer fp32 (the recipe, what ``actor.int8`` uses) and with every layer int8.
Both act greedily for ``--episodes`` evaluation episodes with the same seeds; their returns and
the share of identical greedy actions on the timing batches are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="rlfleet bench actor-int8", description=__doc__.splitlines()[0]
    )
    p.add_argument("--run", required=True, help="an Ape-X run or checkpoint folder")
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--seconds", type=float, default=4.0, help="busy seconds per model")
    p.add_argument("--batch", type=int, default=0, help="observations per call (0: envs_per_actor)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    from rlfleet.agents.common.evaluator import evaluate
    from rlfleet.agents.common.networks import ArgmaxPolicy, load_network
    from rlfleet.envs.make import make_vector_env
    from rlfleet.models.int8_policy import int8_q_network

    loaded = load_network(args.run)
    net, config, env = loaded.net, loaded.config, loaded.env
    batch = args.batch or config.env.envs_per_actor
    # observations the greedy policy meets: calibration and timing batches
    venv = make_vector_env(config.env.id, batch, 12345, env_kwargs=config.env.kwargs)
    obs, seen = venv.reset(), []
    with torch.inference_mode():
        for _ in range(64):
            seen.append(obs.copy())
            obs = venv.step(net(torch.from_numpy(obs)).argmax(1).numpy()).obs
    venv.close()
    calls = [torch.from_numpy(o) for o in seen]
    calib = calls[: len(calls) // 2]
    models = {
        "fp32": net,
        "int8": int8_q_network(net, calib, float_first=True),
        "int8_all_layers": int8_q_network(net, calib, float_first=False),
    }
    lat = {k: [] for k in models}
    busy = dict.fromkeys(models, 0.0)
    agree = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():
            m(calls[0])
        i = 0
        while min(busy.values()) < args.seconds:
            x = calls[i % len(calls)]
            i += 1
            ref = None
            for name, m in models.items():
                t = time.perf_counter()
                out = m(x)
                dt = time.perf_counter() - t
                lat[name].append(dt)
                busy[name] += dt
                act = out.argmax(1)
                ref = act if ref is None else ref
                agree[name].append(float((act == ref).float().mean()))
    result = {"run": str(loaded.checkpoint), "env": config.env.id, "batch": batch, "threads": args.threads,
              "engine": torch.backends.quantized.engine, "models": {}}  # fmt: skip
    for name in models:
        a = np.asarray(lat[name]) * 1e6
        result["models"][name] = {
            "mean_us": float(a.mean()),
            "p50_us": float(np.percentile(a, 50)),
            "p99_us": float(np.percentile(a, 99)),
            "calls": int(a.size),
            "greedy_action_agreement": float(np.mean(agree[name])),
        }
    base = result["models"]["fp32"]["mean_us"]
    for name in models:
        result["models"][name]["speedup_vs_fp32"] = base / result["models"][name]["mean_us"]
    for name, m in models.items():
        policy = ArgmaxPolicy(m, env.num_actions, 0)
        start = time.perf_counter()
        returns, _, _ = evaluate(
            policy, config.env.id, args.episodes, seed=777, env_kwargs=config.env.kwargs,
            max_steps=config.eval.max_episode_steps,
        )  # fmt: skip
        result["models"][name]["greedy_return_mean"] = float(np.mean(returns))
        result["models"][name]["greedy_return_std"] = float(np.std(returns))
        result["models"][name]["eval_seconds"] = time.perf_counter() - start
    result["load"] = os.getloadavg()
    print(f"{result['run']} ({config.env.id}), batch {batch}, engine {result['engine']}, "
          f"threads {args.threads}")  # fmt: skip
    print(
        f"{'model':<16}{'mean us':>9}{'p50 us':>9}{'p99 us':>9}{'speedup':>9}{'agree':>7}{'return':>16}"
    )
    for name, r in result["models"].items():
        print(f"{name:<16}{r['mean_us']:>9.1f}{r['p50_us']:>9.1f}{r['p99_us']:>9.1f}"
              f"{r['speedup_vs_fp32']:>9.2f}{r['greedy_action_agreement']:>7.3f}"
              f"{r['greedy_return_mean']:>9.2f} +-{r['greedy_return_std']:.2f}")  # fmt: skip
    print(f"({args.episodes} greedy episodes each, same seeds; load {result['load'][0]:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
