"""Option names of the model builders, importable without torch (configs validate against them)."""

TORSOS = ("auto", "mlp", "minatar", "nature")
"""Valid ``model.torso`` values (``auto`` picks by observation shape)."""

CORES = ("none", "lstm")
"""Valid ``model.core`` values: no core (feed-forward) or an LSTM."""
