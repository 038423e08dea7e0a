"""The Flax NNX target (``optimizer.TorchToNNX``): a model object and a stateful optimizer."""
