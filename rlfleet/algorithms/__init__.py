"""rlfleet.algorithms."""
