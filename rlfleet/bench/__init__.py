"""rlfleet.bench."""
