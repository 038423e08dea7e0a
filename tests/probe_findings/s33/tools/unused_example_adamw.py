import torch
model = Model(params)
opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
