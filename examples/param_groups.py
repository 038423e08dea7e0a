"""GPT-style parameter groups: weight decay only on matrices."""
import torch


def configure_optimizers(model, weight_decay, learning_rate, betas):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optim_groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)
    return optimizer


def plain_groups(model):
    # Groups without options of their own are just a parameter list.
    groups = [{"params": model.encoder.parameters()}, {"params": model.decoder.parameters()}]
    return torch.optim.Adam(groups, lr=1e-3, weight_decay=1e-5)
