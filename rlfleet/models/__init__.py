"""rlfleet.models."""
