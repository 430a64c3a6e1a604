"""D's few-pixel convolutions as unfold + matmul: the same function, gradients and double backward, same state dict."""
import pytest
import torch
import torch.nn as nn

from usgan.matmul_conv import MatmulConv2d, use_matmul_convs
from usgan.models import Discriminator


@pytest.mark.parametrize("k,s,p,bias", [(4, 2, 1, True), (3, 1, 1, False), (2, 1, 0, False), (4, 2, 1, False)])
def test_matmul_conv_is_the_same_function(k, s, p, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, k, s, p, bias=bias)
    mm = nn.Conv2d(6, 5, k, s, p, bias=bias)
    mm.load_state_dict(conv.state_dict())
    mm.__class__ = MatmulConv2d
    outs = []
    for layer in (conv, mm):
        x = torch.randn(3, 6, 8, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
        y = layer(x)
        g, = torch.autograd.grad(y.square().sum(), x, create_graph=True)    # the gradient penalty's path
        (g.square().sum() + y.sum()).backward()
        outs.append((y.detach(), g.detach(), layer.weight.grad.clone()))
    for a, b in zip(*outs):
        assert a.shape == b.shape
        # float sums in another order: compare against each tensor's scale
        assert float((b - a).abs().max()) <= 1e-5 * float(a.abs().max()), float((b - a).abs().max())


def test_only_the_few_pixel_layers_switch_and_the_state_dict_stays():
    D = Discriminator(image_size=128, conv_dim=8, repeat_num=6)
    before = {k: v.clone() for k, v in D.state_dict().items()}
    # inputs 128, 64, 32, 16, 8, 4 px: the 8 and 4 px layers and both heads (on 2 px) switch
    assert use_matmul_convs(D, 128) == 4
    kinds = [type(m).__name__ for m in D.main if isinstance(m, nn.Conv2d)]
    assert kinds == ["Conv2d"] * 4 + ["MatmulConv2d"] * 2
    assert isinstance(D.conv1, MatmulConv2d) and isinstance(D.conv2, MatmulConv2d)
    after = D.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_switched_critic_matches_under_bf16_autocast():
    torch.manual_seed(0)
    ref, fast = Discriminator(64, conv_dim=8, repeat_num=5), Discriminator(64, conv_dim=8, repeat_num=5)
    fast.load_state_dict(ref.state_dict())
    use_matmul_convs(fast, 64)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = ref(x), fast(x)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype
        torch.testing.assert_close(v.float(), u.float(), rtol=0.05, atol=0.02)
