"""ml_switcheroo: LibCST codemods that translate PyTorch optimizer code into JAX/Optax."""

__version__ = "0.1.0"
