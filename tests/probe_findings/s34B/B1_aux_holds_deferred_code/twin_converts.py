import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        rows = [out[0], out[1]]
        s = sum(o.sum() for o in rows)
        dbl = lambda out: out * 2
        loss = ((out - y) ** 2).mean() + 0.0 * s
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(float(s) + float(dbl(2.0)))
