"""US-GAN generator and StarGAN discriminator; state-dict keys match the authors' checkpoints.

    G = Generator()                              # US-GAN: one residual block + ultimate skip
    G = Generator(res_blocks=6, ultimate_skip=False)   # StarGAN's generator
    fake = G(x, one_hot_target)                  # x in [-1, 1], fake in [-2, 2] (never clamped in training)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class InstanceNorm(nn.InstanceNorm2d):
    """Affine InstanceNorm that always normalises with each image's own statistics.

    The authors track running statistics (so their checkpoints carry them) but never call .eval(), so every
    output they published used per-image statistics. Here .eval() keeps that behaviour and merely stops the
    running averages from being updated, so an evaluated checkpoint stays byte-identical to the loaded one.
    """

    def __init__(self, ch):
        super().__init__(ch, affine=True, track_running_stats=True)

    def forward(self, x):
        update = self.training
        return F.instance_norm(x, self.running_mean if update else None, self.running_var if update else None,
                               self.weight, self.bias, True, self.momentum, self.eps)


def _norm(ch):
    return InstanceNorm(ch)


class ResidualBlock(nn.Module):
    """conv3x3-IN-ReLU-conv3x3-IN plus identity."""

    def __init__(self, ch):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), _norm(ch), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), _norm(ch))

    def forward(self, x):
        return x + self.main(x)


class Generator(nn.Module):
    """Encoder, residual blocks, decoder; the ultimate skip adds the input image after the tanh."""

    def __init__(self, c_dim=7, conv_dim=64, res_blocks=1, ultimate_skip=True):
        super().__init__()
        self.c_dim, self.ultimate_skip = c_dim, ultimate_skip
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _norm(conv_dim), nn.ReLU(inplace=True)]
        ch = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), _norm(ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(res_blocks)]
        for _ in range(2):  # up-sampling
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), _norm(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.Conv2d(ch, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        out = self.main(torch.cat([x, c.to(x.dtype)], dim=1))
        return out + x if self.ultimate_skip else out


class Discriminator(nn.Module):
    """PatchGAN critic with an expression-classification head (StarGAN)."""

    def __init__(self, image_size=128, c_dim=7, conv_dim=64, repeat_num=6):
        super().__init__()
        layers = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        ch = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(ch, c_dim, image_size // 2 ** repeat_num, bias=False)

    def forward(self, x):
        h = self.main(x)
        return self.conv1(h), self.conv2(h).view(h.size(0), -1)


def count_parameters(module):
    """Trainable parameters (running statistics are buffers and do not count)."""
    return sum(p.numel() for p in module.parameters())
