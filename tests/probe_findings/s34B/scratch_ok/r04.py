import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
w = 1.0
def get_w():
    return w
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        w = w + 1.0
        loss = ((out - y) ** 2).mean() * get_w()
        loss.backward()
        opt.step()
        losses.append(loss.item())
