import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        def crit(t):
            return ((t - y) ** 2).mean()
        loss = crit(out)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(float(crit(out)))
