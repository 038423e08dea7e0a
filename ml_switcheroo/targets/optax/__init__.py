"""The optax target: one module per hook family; ``target`` collects them."""
