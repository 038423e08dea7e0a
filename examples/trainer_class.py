"""A trainer class: the optimizer is built in __init__ and stepped in another method."""
from torch import nn
from torch.optim import AdamW


class Trainer:
    def __init__(self, model: nn.Module, lr: float = 3e-4):
        self.model = model
        self.optimizer = AdamW(
            model.parameters(),
            lr=lr,  # peak learning rate
            betas=(0.9, 0.95),
            weight_decay=0.1,
            fused=True,  # CUDA speed-up, no effect on the math
        )

    def train_step(self, batch):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.model(batch).mean()
        loss.backward()
        self.optimizer.step()
        return loss.item()
