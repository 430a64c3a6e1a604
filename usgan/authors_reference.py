"""The authors' generator as their code builds and runs it, for parity tests and the speed baseline only.

    ref = AuthorsGenerator(conv_dim=64, repeat_num=1)      # US-GAN; repeat_num=6, skip=False for StarGAN
    ref.load_state_dict(torch.load("usgan_87_G.ckpt"))
    out = ref(x, c)      # stays in train mode, as their test loop never calls .eval()

Written from the layer table in the reference notes (stock nn.InstanceNorm2d with affine weights and
running statistics, in training mode), so its state-dict keys are exactly `main.0.weight` ... `main.16.weight`.
Use usgan.models.Generator for real work: it produces the same images without touching running stats.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _in(ch):
    return nn.InstanceNorm2d(ch, affine=True, track_running_stats=True)


class AuthorsResidualBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), _in(ch), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), _in(ch))

    def forward(self, x):
        return x + self.main(x)


class AuthorsGenerator(nn.Module):
    """Stock-PyTorch US-GAN/StarGAN generator in train mode; eager fp32, one call per target in their test loop."""

    def __init__(self, conv_dim=64, c_dim=7, repeat_num=1, skip=True):
        super().__init__()
        self.skip, self.c_dim = skip, c_dim
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _in(conv_dim), nn.ReLU(inplace=True)]
        ch = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), _in(ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [AuthorsResidualBlock(ch) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), _in(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.Conv2d(ch, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        out = self.main(torch.cat([x, c], dim=1))
        return out + x if self.skip else out


@torch.no_grad()
def authors_all_expressions(G: AuthorsGenerator, x: torch.Tensor) -> torch.Tensor:
    """Their test loop: one forward per target label over the batch; returns (7, N, 3, S, S)."""
    outs = []
    for k in range(G.c_dim):
        c = torch.zeros(x.size(0), G.c_dim)
        c[:, k] = 1
        outs.append(G(x, c))
    return torch.stack(outs)
