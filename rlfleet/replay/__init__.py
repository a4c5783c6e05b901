"""rlfleet.replay."""
