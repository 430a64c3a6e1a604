"""US-GAN generator and StarGAN discriminator; state-dict keys match the authors' checkpoints.

    G = Generator()                              # US-GAN: one residual block + ultimate skip
    G = Generator(res_blocks=6, ultimate_skip=False)   # StarGAN's generator
    G = Generator(attention=True)                # the paper's proposed extensions (off in every preset):
    G = Generator(res_blocks=0, intermediate_skips=True)   # a mask on the change; U-Net skips for the block
    G = Generator(resize_conv=True)              # up-sampling that cannot draw a checkerboard (the demo's)
    fake = G(x, one_hot_target)                  # x in [-1, 1], fake in [-2, 2] (never clamped in training)
    fake, mask = G(x, one_hot_target, return_mask=True)    # mask: None without attention
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def binomial_blur(x):
    """Per channel, a fixed [1 2 1] x [1 2 1] / 16 blur, replicate-padded: no period-2 pattern passes but at the border."""
    b = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (b[:, None] * b[None, :] / 16).expand(x.size(1), 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.size(1))


class InstanceNorm(nn.InstanceNorm2d):
    """Affine InstanceNorm that always normalises with each image's own statistics.

    The authors track running statistics (so their checkpoints carry them) but never call .eval(), so every
    output they published used per-image statistics. Here .eval() keeps that behaviour and merely stops the
    running averages from being updated, so an evaluated checkpoint stays byte-identical to the loaded one.
    """

    def __init__(self, ch, label_dim=0):
        super().__init__(ch, affine=True, track_running_stats=True)
        # Switch `label_norm` (off in the paper): a class-conditional scale and shift after the normalisation.
        # The paper's label enters only as constant input maps, and every InstanceNorm subtracts each channel's
        # spatial mean, which erases a constant everywhere but near the padded border.
        self.label_affine = LabelAffine(label_dim, ch) if label_dim else None
        self.label = None   # the one-hot condition of the current forward, set by the Generator

    def forward(self, x):
        update = self.training
        out = F.instance_norm(x, self.running_mean if update else None, self.running_var if update else None,
                              self.weight, self.bias, True, self.momentum, self.eps)
        if self.label_affine is None:
            return out
        scale, shift = self.label_affine(self.label.to(out.dtype))
        return out * (1 + scale) + shift


class LabelAffine(nn.Module):
    """Per-channel (scale, shift) from a one-hot label; zero at init, so G starts as the unconditioned network.

    The weight is stored divided by `gain` and multiplied back in the forward (StyleGAN's equalised learning
    rate): Adam moves a parameter by about lr per step whatever its gradient, so an O(1) scale stored as is
    would need ~1/lr = 5,000 steps to grow; stored this way it grows `gain` times faster.
    """

    def __init__(self, label_dim, ch, gain=10.0):
        super().__init__()
        self.gain = gain
        self.weight = nn.Parameter(torch.zeros(2 * ch, label_dim))

    def forward(self, label):
        out = F.linear(label, self.weight * self.gain)[:, :, None, None]
        return out.chunk(2, dim=1)


class ResidualBlock(nn.Module):
    """conv3x3-IN-ReLU-conv3x3-IN plus identity."""

    def __init__(self, ch, label_dim=0):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), InstanceNorm(ch, label_dim), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), InstanceNorm(ch, label_dim))

    def forward(self, x):
        return x + self.main(x)


class ResizeConv(nn.Module):
    """Nearest-neighbour x2 up-sampling then a 3x3 conv, run as the 4x4 stride-2 transposed conv it equals.

    Odena et al. (2016): a transposed conv's four output phases have free weights, so it can draw (and a critic
    can push it to draw) a period-2 checkerboard; after a nearest x2 every phase is a sum of the same nine
    weights, and a flat input gives a flat output. Each phase of the up-sampled conv reads a 2x2 neighbourhood
    of the input, so the 3x3 kernel folds into a 4x4 transposed kernel (`_FOLD`) and the layer costs what the
    paper's does: the up-sampled map is never built.
    """

    # Per axis, the transposed conv's 4 taps as sums of the 3x3 kernel's 3 (rows: taps 0-3, columns: w[-1, 0, 1]).
    _FOLD = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))

    def __init__(self, in_ch, out_ch):
        super().__init__()
        conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)   # PyTorch's init for the 3x3 conv it stands for
        self.weight = conv.weight
        self.register_buffer("fold", torch.tensor(self._FOLD), persistent=False)

    def forward(self, x):
        w = torch.einsum("ka,oiab,lb->iokl", self.fold, self.weight, self.fold)
        return F.conv_transpose2d(x, w, stride=2, padding=1)


class Generator(nn.Module):
    """Encoder, residual blocks, decoder; the ultimate skip adds the input image after the tanh."""

    def __init__(self, c_dim=7, conv_dim=64, res_blocks=1, ultimate_skip=True, label_norm=False, residual_blur=False,
                 residual_scale=1.0, attention=False, intermediate_skips=False, resize_conv=False):
        super().__init__()
        self.c_dim, self.ultimate_skip = c_dim, ultimate_skip
        if attention and not ultimate_skip:
            raise ValueError("attention gates the change added through the ultimate skip: keep ultimate_skip on")
        # Switch `residual_scale` (1 in the paper): the change G adds through the skip is scale * tanh(...).
        # With 1 a pixel can move by less than half the image range, so light skin can never become a dark open
        # mouth (or a dark mouth skin again): about a third of an expression's change is out of reach.
        self.residual_scale = float(residual_scale)
        # Switch `residual_blur` (off in the paper): a fixed [1 2 1] x [1 2 1] / 16 blur of the change G adds
        # through the skip, which removes period-2 patterns, the checkerboards a critic's strided convolutions
        # feed back as gradients; expression strokes 2-4 px wide pass. Not a parameter: the state dict is unchanged.
        self.residual_blur = bool(residual_blur)
        k = c_dim if label_norm else 0
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), InstanceNorm(conv_dim, k), nn.ReLU(inplace=True)]
        ch = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), InstanceNorm(ch * 2, k), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResidualBlock(ch, k) for _ in range(res_blocks)]
        # Switch `intermediate_skips` (off in the paper, which proposes it): U-Net skips, the encoder's
        # conv_dim x S and 2conv_dim x S/2 maps concatenated to the decoder's maps of the same size, so the
        # up-sampling conv at S/2 and the last 7x7 conv read twice the channels.
        self.skip_from, self.skip_into = set(), set()
        if intermediate_skips:
            # The encoder's ReLUs at S and S/2; the map at S/2 joins before the 2nd up-sampling conv, the map at
            # S before the last conv (the colour and mask heads).
            self.skip_from, self.skip_into = {2, 5}, {len(layers) + 3}
        for _ in range(2):  # up-sampling
            wide = 2 if intermediate_skips and ch < conv_dim * 4 else 1
            # Switch `resize_conv` (off in the paper): nearest x2 + 3x3 conv, which cannot draw a checkerboard.
            up = (ResizeConv(ch * wide, ch // 2) if resize_conv
                  else nn.ConvTranspose2d(ch * wide, ch // 2, 4, 2, 1, bias=False))
            layers += [up, InstanceNorm(ch // 2, k), nn.ReLU(inplace=True)]
            ch //= 2
        ch *= 2 if intermediate_skips else 1
        layers += [nn.Conv2d(ch, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        # Switch `attention` (off in the paper, which proposes it): GANimation's mask m = sigmoid(conv7x7(h)) read
        # from the features the colour head reads; the output is x + m * r, so m == 0 keeps a pixel exactly.
        # Its conv runs fused with the colour head's (forward); the sigmoid is the module that makes the mask.
        # Built after `main` so the paper's layers draw the same initial weights with or without it.
        self.attention = nn.Sequential(nn.Conv2d(ch, 1, 7, 1, 3, bias=False), nn.Sigmoid()) if attention else None
        self.label_norms = [m for m in self.modules() if getattr(m, "label_affine", None) is not None]

    def forward(self, x, c, return_mask=False):
        for norm in self.label_norms:
            norm.label = c
        c = c.view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        h = torch.cat([x, c.to(x.dtype)], dim=1)
        mask = None
        if self.attention is not None:
            # Colour and mask heads read the same features with the same kernel: as one 4-channel convolution
            # the pass over the features (which dominates at 32 channels, not the FLOPs) is paid once.
            colour = self.main[-2]
            both = F.conv2d(self._features(h), torch.cat([colour.weight, self.attention[0].weight]), None,
                            colour.stride, colour.padding)
            out, mask = self.main[-1](both[:, :3]), self.attention[1](both[:, 3:])
        elif self.skip_from:
            out = self.main[-1](self.main[-2](self._features(h)))
        else:
            out = self.main(h)
        if self.residual_blur:
            out = binomial_blur(out)
        if self.residual_scale != 1.0:
            out = out * self.residual_scale
        if mask is not None:
            out = mask * out
        out = out + x if self.ultimate_skip else out
        return (out, mask) if return_mask else out

    def _features(self, h):
        """`main` up to the colour head (its last conv and tanh), with the U-Net skips where switched on."""
        saved = []
        for i, layer in enumerate(self.main[:-2]):
            if i in self.skip_into:
                h = torch.cat([h, saved.pop()], dim=1)
            h = layer(h)
            if i in self.skip_from:
                saved.append(h)
        return torch.cat([h, saved.pop()], dim=1) if saved else h


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
