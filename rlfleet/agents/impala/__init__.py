"""IMPALA with V-trace, an optional LSTM core and kickstarting (:mod:`.spec`)."""
