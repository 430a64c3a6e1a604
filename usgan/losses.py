"""The US-GAN objective (StarGAN's): WGAN-GP + expression classification + L1 cycle reconstruction.

The loss is an object with two named phases, so the training loop never looks inside the networks:
    loss = USGANLoss(G, D, LossConfig())
    d_total, d_terms = loss.discriminator_phase(x_real, c_trg, label_org)
    g_total, g_terms = loss.generator_phase(x_real, c_org, c_trg, label_trg)
"""
import torch
import torch.nn.functional as F


def gradient_penalty(critic_out, x_hat):
    """mean over samples of (||d critic / d x_hat||_2 - 1)^2."""
    grad = torch.autograd.grad(critic_out, x_hat, grad_outputs=torch.ones_like(critic_out),
                               create_graph=True, retain_graph=True, only_inputs=True)[0]
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


class USGANLoss:
    """Discriminator and generator phases of one iteration."""

    def __init__(self, G, D, cfg):
        self.G, self.D, self.cfg = G, D, cfg
        # Under DDP, a network whose gradients this phase throws away is called through its bare module:
        # no gradient all-reduce for D in the G phase, no buffer broadcast for a no-grad G in the D phase.
        self._G_bare, self._D_bare = getattr(G, "module", G), getattr(D, "module", D)

    def discriminator_phase(self, x_real, c_trg, label_org):
        """-D(x) + D(G(x,c')) + l_cls * CE(D_cls(x), c) + l_gp * GP."""
        cfg = self.cfg
        out_src, out_cls = self.D(x_real)
        d_real = -out_src.mean()
        d_cls = F.cross_entropy(out_cls.float(), label_org)
        with torch.no_grad():
            x_fake = self._G_bare(x_real, c_trg)
        out_src, _ = self.D(x_fake)
        d_fake = out_src.mean()
        alpha = torch.rand(x_real.size(0), 1, 1, 1, device=x_real.device, dtype=x_real.dtype)
        x_hat = (alpha * x_real + (1 - alpha) * x_fake).requires_grad_(True)
        d_gp = gradient_penalty(self.D(x_hat)[0], x_hat)
        total = d_real + d_fake + cfg.lambda_cls * d_cls + cfg.lambda_gp * d_gp
        return total, {"D/loss_real": d_real, "D/loss_fake": d_fake, "D/loss_cls": d_cls, "D/loss_gp": d_gp}

    def generator_phase(self, x_real, c_org, c_trg, label_trg):
        """-D(G(x,c')) + l_rec * |x - G(G(x,c'),c)|_1 + l_cls * CE(D_cls(G(x,c')), c')."""
        cfg = self.cfg
        x_fake = self.G(x_real, c_trg)
        out_src, out_cls = self._D_bare(x_fake)
        g_fake = -out_src.mean()
        g_cls = F.cross_entropy(out_cls.float(), label_trg)
        x_rec = self.G(x_fake, c_org)
        g_rec = (x_real - x_rec).abs().mean()
        total = g_fake + cfg.lambda_rec * g_rec + cfg.lambda_cls * g_cls
        return total, {"G/loss_fake": g_fake, "G/loss_rec": g_rec, "G/loss_cls": g_cls}
