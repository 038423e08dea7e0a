"""Code that only looks like optimizer code: ml_switcheroo must leave all of it alone."""
import torch


class Adam:
    """A user class that happens to be called Adam."""

    def step(self):
        return 0


def rollout(env, model, policy):
    opt = Adam()
    opt.step()  # not a torch optimizer
    state = env.step(policy(env.observation))
    model.zero_grad()  # a torch.nn.Module method: clears the module's .grad fields
    return state


def shadowed(torch):
    # `torch` is a parameter here, not the module.
    return torch.optim.Adam([], lr=0.1)
