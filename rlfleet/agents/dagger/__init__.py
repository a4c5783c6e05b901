"""DAgger (Ross, Gordon and Bagnell, 2011) and behaviour cloning as its special case (:mod:`.spec`)."""
