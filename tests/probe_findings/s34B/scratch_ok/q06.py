import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
hist = []
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        hist.append(out)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
for h in hist:
    losses.append(float(h.sum()))
