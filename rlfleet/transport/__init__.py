"""rlfleet.transport."""
