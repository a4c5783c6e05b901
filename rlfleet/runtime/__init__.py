"""rlfleet.runtime."""
