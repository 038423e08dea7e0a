import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for batch in loader:
        batch = list(batch)
        batch[0] = batch[0].cuda(non_blocking=True)
        opt.zero_grad()
        out = model(batch[0])
        loss = ((out - batch[1]) ** 2).mean()
        loss.backward()
        opt.step()
        batch[0].mul_(2)
        losses.append(loss.item())
        losses.append(float(batch[0].size(0)))
