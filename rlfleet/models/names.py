"""Option names of the model builders, importable without torch (configs validate against them)."""

TORSOS = ("auto", "mlp", "minatar", "nature")
"""Valid ``model.torso`` values (``auto`` picks by observation shape)."""

CORES = ("none", "lstm")
"""Valid ``model.core`` values: no core (feed-forward) or an LSTM."""

ACTIVATIONS = ("relu", "tanh")
"""Valid ``model.activation`` values of MLP torsos."""

SQUASHES = ("tanh", "clip")
"""Valid ``model.squash`` values: how a Gaussian's sample reaches a Box's bounds
(:data:`rlfleet.math.distributions.SQUASHES`)."""
