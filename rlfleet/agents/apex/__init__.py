"""Ape-X DQN and its demonstration variants DQfD and Ape-X DQfD (:mod:`.spec`)."""
