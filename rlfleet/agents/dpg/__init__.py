"""Ape-X DPG: the Ape-X fleet with a DDPG / TD3 learner."""
