"""Running G: the one place that puts it in eval mode, builds the condition and calls it."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def unwrap(m: torch.nn.Module) -> torch.nn.Module:
    """The network itself: DDP keeps it in .module."""
    return getattr(m, "module", m)


@torch.no_grad()
def translate(G, x: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None, return_mask: bool = False):
    """G(x, c) in eval mode for faces x in [-1, 1], on G's device, unclamped.

    labels: target classes (N,), or conditions (N, c_dim) such as a morph's mixed one-hots.
    batch_size 1 makes every face come out the same whatever it is batched with (CPU convolutions
    round differently with the batch size).
    return_mask: also return G's attention mask (N, 1, S, S), or None where G has none (model.attention).
    """
    G = unwrap(G)
    dev = next(G.parameters()).device
    c = F.one_hot(labels.long(), G.c_dim).float() if labels.dim() == 1 else labels.float()
    step = batch_size or max(1, len(x))
    was_training = G.training
    G.eval()
    try:
        if not return_mask:
            return torch.cat([G(x[s:s + step].to(dev), c[s:s + step].to(dev)) for s in range(0, len(x), step)])
        parts = [G(x[s:s + step].to(dev), c[s:s + step].to(dev), return_mask=True) for s in range(0, len(x), step)]
        masks = None if parts[0][1] is None else torch.cat([m for _, m in parts])
        return torch.cat([y for y, _ in parts]), masks
    finally:
        G.train(was_training)
