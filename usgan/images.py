"""The one conversion between stored images (uint8, 0..255) and the networks' floats in [-1, 1].

    x = to_float(images_uint8)     # (N, 3, H, W) in [-1, 1], a new tensor
    y = to_uint8(G(x, c))          # clamped to [-1, 1] only here, as the authors do when saving
"""
from __future__ import annotations

import numpy as np
import torch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [-1, 1]: x / 127.5 - 1, in a new tensor (worked on in place: the data path is hot)."""
    return images.to(torch.float32, copy=True).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (or the skip's [-2, 2]) images to uint8 on the CPU, clamped only here, rounded to nearest."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def to_hwc_uint8(images) -> np.ndarray:
    """(N, 3, H, W) tensors, uint8 or [-1, 1] floats, or (N, H, W, 3) uint8 arrays, as an (N, H, W, 3) uint8 array."""
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8:
            images = to_uint8(images)
        return images.cpu().permute(0, 2, 3, 1).numpy()
    return np.asarray(images, dtype=np.uint8)
