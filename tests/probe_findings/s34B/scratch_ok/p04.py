import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        n = out.size()[0]
        loss = ((out - y) ** 2).sum() / n
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(float(len(out.size()) + out.size(-1) + out.size(dim=1)))
