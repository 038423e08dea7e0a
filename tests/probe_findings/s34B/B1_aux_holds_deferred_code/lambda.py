import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
fns = []
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        scale = lambda: out.sum()
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        fns.append(scale)
        losses.append(loss.item())
for f in fns:
    losses.append(float(f()))
