"""The critic's few-pixel convolutions as unfold + one matrix product: the same function, the same parameters.

    use_matmul_convs(D, image_size=128)    # D's layers whose input is <= 8x8 pixels switch their forward

Why: the StarGAN critic ends in layers like 1024 -> 2048 channels, 4x4 kernel, on a 4x4 map. oneDNN's direct
convolution kernels are poor at that shape (and so is the double backward the gradient penalty needs): on a
2-core AVX-512/AMX CPU, forward + backward + double backward of that layer took 1.74 s in fp32 and 2.51 s in
bf16 as a convolution, 0.73 s and 0.27 s as unfold + matmul (batch 48). Layers on large maps stay
convolutions, where oneDNN wins. The state dict does not change: a checkpoint does not know which was used.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

MAX_INPUT_PIXELS = 8   # input <= 8x8 runs as a matmul (at 16x16 the conv still wins in fp32: matmul 0.7x, bf16 1.1x)


class MatmulConv2d(nn.Conv2d):
    """nn.Conv2d computed as im2col + GEMM (one matrix product over batch x output pixels)."""

    def forward(self, x):
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, _, h, w = x.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))        # n, C*kh*kw, ho*wo
        weight = self.weight.reshape(self.out_channels, -1)
        y = cols.transpose(1, 2).reshape(n * ho * wo, -1) @ weight.t()     # autocast makes this a bf16 GEMM
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.view(n, ho, wo, self.out_channels).permute(0, 3, 1, 2)


def use_matmul_convs(D: nn.Module, image_size: int, max_pixels: int = MAX_INPUT_PIXELS) -> int:
    """Switch the forward of D's convolutions whose input is <= max_pixels wide; returns how many switched.

    Call it after any .to(memory_format=...): the GEMM reads each switched weight as a plain matrix.
    """
    def switch(layer):
        layer.__class__ = MatmulConv2d   # same parameters and buffers, only forward differs
        layer.weight.data = layer.weight.data.contiguous()

    switched, size = 0, image_size
    for layer in D.main:
        if type(layer) is nn.Conv2d:
            if size <= max_pixels:
                switch(layer)
                switched += 1
            size = (size + 2 * layer.padding[0] - layer.kernel_size[0]) // layer.stride[0] + 1
    for head in (D.conv1, D.conv2):   # both heads read the last, smallest map
        if size <= max_pixels:
            switch(head)
            switched += 1
    return switched
