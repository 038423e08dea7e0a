import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
def loss_fn(a, b):
    return ((a - b) ** 2).mean()
grads = 3.0
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = loss_fn(out, y) * grads
        loss.backward()
        opt.step()
        losses.append(loss.item())
