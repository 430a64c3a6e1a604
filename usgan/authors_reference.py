"""The authors' generator and training iteration as their code runs them, for parity tests and speed baselines only.

    ref = AuthorsGenerator(conv_dim=64, repeat_num=1)      # US-GAN; repeat_num=6, skip=False for StarGAN
    ref.load_state_dict(torch.load("usgan_87_G.ckpt"))
    out = ref(x, c)      # stays in train mode, as their test loop never calls .eval()
    loop = AuthorsLoop(cfg, "cuda"); loop.step(x, labels, i)   # their Solver.train body for iteration i

Written from the layer table in the reference notes (stock nn.InstanceNorm2d with affine weights and
running statistics, in training mode), so its state-dict keys are exactly `main.0.weight` ... `main.16.weight`.
Use usgan.models.Generator for real work: it produces the same images without touching running stats.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import Discriminator


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
        c = torch.zeros(x.size(0), G.c_dim, device=x.device)   # their create_labels moves it to the device
        c[:, k] = 1
        outs.append(G(x, c))
    return torch.stack(outs)


def authors_gradient_penalty(y, x):
    """Their (||dy/dx||_2 - 1)^2, with the gradient's norm written out."""
    dydx = torch.autograd.grad(outputs=y, inputs=x, grad_outputs=torch.ones(y.size(), device=y.device),
                               retain_graph=True, create_graph=True, only_inputs=True)[0]
    dydx = dydx.view(dydx.size(0), -1)
    return torch.mean((torch.sqrt(torch.sum(dydx ** 2, dim=1)) - 1) ** 2)


class AuthorsLoop:
    """The body of the authors' Solver.train (StarGAN's) for one iteration: fp32, eager, contiguous tensors;
    every D step calls D on x, on the detached fake and on x_hat separately, and computes G(x, c') with grad;
    every n_critic-th iteration a G step computes G(x, c') again. Their D is usgan.models.Discriminator as
    built (stock convolutions; the parity test checks it against theirs). Random draws on the CPU, as theirs."""

    def __init__(self, cfg, device="cpu"):
        m, o = cfg.model, cfg.optim
        self.cfg, self.device = cfg, torch.device(device)
        self.G = AuthorsGenerator(conv_dim=m.g_conv_dim, c_dim=m.c_dim, repeat_num=m.g_res_blocks,
                                  skip=m.ultimate_skip).to(self.device)
        self.D = Discriminator(image_size=m.image_size, c_dim=m.c_dim, conv_dim=m.d_conv_dim,
                               repeat_num=m.d_repeat_num).to(self.device)
        self.g_optimizer = torch.optim.Adam(self.G.parameters(), o.g_lr, [o.beta1, o.beta2])
        self.d_optimizer = torch.optim.Adam(self.D.parameters(), o.d_lr, [o.beta1, o.beta2])

    def reset_grad(self):
        self.g_optimizer.zero_grad()
        self.d_optimizer.zero_grad()

    def step(self, x_real, label_org, i) -> dict[str, float]:
        c_dim, l, n_critic, dev = self.cfg.model.c_dim, self.cfg.loss, self.cfg.optim.n_critic, self.device
        label_trg = label_org[torch.randperm(label_org.size(0))]
        c_org, c_trg = F.one_hot(label_org, c_dim).float().to(dev), F.one_hot(label_trg, c_dim).float().to(dev)
        x_real, label_org, label_trg = x_real.to(dev), label_org.to(dev), label_trg.to(dev)
        loss = {}
        # =========================== Train the discriminator =========================== #
        out_src, out_cls = self.D(x_real)
        d_loss_real = - torch.mean(out_src)
        d_loss_cls = F.cross_entropy(out_cls, label_org)
        x_fake = self.G(x_real, c_trg)
        out_src, out_cls = self.D(x_fake.detach())
        d_loss_fake = torch.mean(out_src)
        alpha = torch.rand(x_real.size(0), 1, 1, 1).to(dev)
        x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
        out_src, _ = self.D(x_hat)
        d_loss_gp = authors_gradient_penalty(out_src, x_hat)
        d_loss = d_loss_real + d_loss_fake + l.lambda_cls * d_loss_cls + l.lambda_gp * d_loss_gp
        self.reset_grad()
        d_loss.backward()
        self.d_optimizer.step()
        loss["D/loss_real"], loss["D/loss_fake"] = d_loss_real.item(), d_loss_fake.item()
        loss["D/loss_cls"], loss["D/loss_gp"] = d_loss_cls.item(), d_loss_gp.item()
        # ============================= Train the generator ============================= #
        if (i + 1) % n_critic == 0:
            x_fake = self.G(x_real, c_trg)
            out_src, out_cls = self.D(x_fake)
            g_loss_fake = - torch.mean(out_src)
            g_loss_cls = F.cross_entropy(out_cls, label_trg)
            x_reconst = self.G(x_fake, c_org)
            g_loss_rec = torch.mean(torch.abs(x_real - x_reconst))
            g_loss = g_loss_fake + l.lambda_rec * g_loss_rec + l.lambda_cls * g_loss_cls
            self.reset_grad()
            g_loss.backward()
            self.g_optimizer.step()
            loss["G/loss_fake"], loss["G/loss_rec"] = g_loss_fake.item(), g_loss_rec.item()
            loss["G/loss_cls"] = g_loss_cls.item()
        return loss
