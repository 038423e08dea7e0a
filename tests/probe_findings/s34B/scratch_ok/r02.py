import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        w = 2.0
        get_w = lambda: w
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        w = 5.0
        losses.append(loss.item())
        losses.append(get_w())
