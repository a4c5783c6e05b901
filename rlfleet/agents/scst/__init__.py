"""Sequence-level RL: XE pre-training and self-critical sequence training (SCST)."""
