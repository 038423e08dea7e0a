import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
w = 1.0
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean() * w
        w = w * 0.9
        loss.backward()
        opt.step()
        losses.append(loss.item())
