"""rlfleet.math."""
