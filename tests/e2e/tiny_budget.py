"""Config overrides that make a whole Ape-X fleet run in seconds (shared by the e2e tests)."""

from __future__ import annotations

TINY = [
    "env.envs_per_actor=4",
    "model.hidden=[32, 32]",
    "actor.num_actors=2",
    "actor.push_size=16",
    "replay.capacity=5000",
    "replay.learning_starts=200",
    "replay.samples_per_insert=4.0",
    "learner.batch_size=32",
    "learner.publish_interval=2",
    "eval.episodes=4",
    "eval.final_episodes=3",
    "eval.interval_s=0.5",
    "run.stop_on_solve=false",
    "run.log_interval_s=0.5",
]

#: The same for an IMPALA fleet (impala-* presets): two actors of 4 envs, unrolls of 8 steps,
#: two unrolls per update.
TINY_IMPALA = [
    "env.envs_per_actor=4",
    "model.hidden=[32, 32]",
    "actor.num_actors=2",
    "algo.unroll_length=8",
    "learner.batch_size=2",
    "eval.episodes=4",
    "eval.final_episodes=3",
    "eval.interval_s=0.5",
    "run.stop_on_solve=false",
    "run.log_interval_s=0.5",
]

#: The same for a PPO fleet (ppo-* presets): two actors of 4 envs, rollouts of 16 steps, one
#: rollout of each actor per iteration, two short epochs.
TINY_PPO = [
    "env.envs_per_actor=4",
    "model.hidden=[16]",
    "actor.num_actors=2",
    "algo.rollout_length=16",
    "algo.epochs=2",
    "algo.minibatch_size=32",
    "learner.rollouts_per_update=2",
    "eval.episodes=3",
    "eval.final_episodes=3",
    "eval.interval_s=0.5",
    "run.stop_on_solve=false",
    "run.log_interval_s=0.5",
]

#: The same for an Ape-X DPG fleet (dpg-* presets): two actors of 4 envs, a small replay that
#: starts learning after 200 transitions, small batches.
TINY_DPG = [
    "env.envs_per_actor=4",
    "model.hidden=[32, 32]",
    "actor.num_actors=2",
    "actor.push_size=16",
    "actor.random_steps=0",
    "replay.capacity=5000",
    "replay.learning_starts=200",
    "replay.samples_per_insert=4.0",
    "learner.batch_size=32",
    "learner.publish_interval=2",
    "eval.episodes=2",
    "eval.final_episodes=2",
    "eval.interval_s=0.5",
    "run.stop_on_solve=false",
    "run.log_interval_s=0.5",
]
