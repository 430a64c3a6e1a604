"""G trained alone on the true targets of the synthetic set: how fast this generator can learn the mapping at all.

    batches = target_batches(data, batch_size=16, seed=0)
    for _ in range(steps): supervised_step(G, opt, *next(batches))

A supervision the GAN never has (it must find the same mapping through the critic's classifier), so the curve is
a ceiling for the GAN, and a cheap check that an architecture or initialisation can learn expressions at all.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def target_batches(data, batch_size: int, seed: int = 0, split: str = "train", faces=None):
    """Endless (x, c_trg, y): each face asked for a random other expression, y that identity's real rendering of it."""
    gt = data.ground_truth()
    g = torch.Generator().manual_seed(seed)
    pool = data.index(split) if faces is None else torch.as_tensor(faces)
    c_dim = 7
    while True:
        src = pool[torch.randint(len(pool), (batch_size,), generator=g)].tolist()
        pairs = []
        for j in src:
            r = data.records[j]
            choices = [k for k in range(c_dim) if k != r.label and (r.subject, k) in gt]
            k = choices[int(torch.randint(len(choices), (1,), generator=g))]
            pairs.append((j, k, gt[(r.subject, k)]))
        x = data.as_float([a for a, _, _ in pairs])
        y = data.as_float([t for _, _, t in pairs])
        c = F.one_hot(torch.tensor([k for _, k, _ in pairs]), c_dim).float()
        yield x, c, y


def supervised_step(G, opt, x, c, y) -> float:
    """One Adam step of L1(G(x, c), y); returns the loss."""
    loss = (G(x.contiguous(memory_format=torch.channels_last), c) - y).abs().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())
