import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        idx = (y > 0).long()
        x = x.to(idx)
        out = model(x.double())
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
