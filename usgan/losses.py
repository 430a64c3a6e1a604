"""The US-GAN objective (StarGAN's): WGAN-GP + expression classification + L1 cycle reconstruction.

The loss is an object with two named phases, so the training loop never looks inside the networks:
    loss = USGANLoss(G, D, LossConfig())
    d_total, d_terms = loss.discriminator_phase(x_real, c_trg, label_org)
    g_total, g_terms = loss.generator_phase(x_real, c_org, c_trg, label_trg)

Fast paths (USGANLoss(G, D, cfg, speed=SpeedConfig(...))), none of which changes the math:
  - batch_d:  D(x_real) and D(x_fake) as one forward on their concatenation (D has no batch-coupled layers);
  - share_fake: the caller passes x_fake = G(x_real, c_trg), computed once with grad, to both phases of an
    iteration where G also steps (G is not updated in between, so the D phase's fake is the same tensor);
  - freeze_d_in_g: D's weights are not differentiated in the G phase (their gradients were thrown away);
  - bf16 / bf16_d: autocast for G's forwards / also for D's forwards and its gradient penalty;
  - (in step.py) d_matmul: D's few-pixel layers as unfold + matmul, see matmul_conv.py.
With speed=None every switch is off: the plain path, as the authors wrote it.
"""
import contextlib

import torch
import torch.nn.functional as F

from .models import binomial_blur
from .translate import unwrap


def gradient_penalty(critic_out, x_hat):
    """mean over samples of (||d critic / d x_hat||_2 - 1)^2."""
    grad = torch.autograd.grad(critic_out, x_hat, grad_outputs=torch.ones_like(critic_out),
                               create_graph=True, retain_graph=True, only_inputs=True)[0]
    norm = grad.float().flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def colour_jitter(x):
    """Per image: random brightness, saturation and contrast (DiffAugment's colour policy), differentiable.

    Measured on D's classifier alone (demo D, 300 steps): it learns about as fast as without (loss 0.53 vs 0.43).
    """
    u = lambda: torch.rand(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    x = x + (u() - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (u() * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (u() + 0.5) + mean


def random_shift(x, max_shift: int):
    """Per image: a random move of up to max_shift pixels each way, zeros shifted in (DiffAugment's translation).

    On D's classifier alone (demo D, 300 steps) shifts of 1/16 or 1/8 of the image slow it (loss 0.97 and 1.52
    against 0.43); inside the GAN a 1/16 shift is what keeps it from memorising the training faces (docs/learning.md).
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n, 1, 1), device=x.device)
    rows = dy + torch.arange(h, device=x.device).view(1, h, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, w)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1), :, rows, cols].permute(0, 3, 1, 2)


def random_cutout(x, size: int):
    """Per image: a size x size square at a random place blanked to 0, clipped at the border (DiffAugment's cutout).

    D must then read an expression from whichever of the mouth, eyes and brows is left, so G gains nothing by
    drawing one of them and leaving the source's others.
    """
    n, _, h, w = x.shape
    cy = torch.randint(0, h + 1 - size % 2, (n, 1, 1), device=x.device) - size // 2
    cx = torch.randint(0, w + 1 - size % 2, (n, 1, 1), device=x.device) - size // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (rows >= cy) & (rows < cy + size) & (cols >= cx) & (cols < cx + size)
    return x * (~hole).unsqueeze(1).to(x.dtype)


class USGANLoss:
    """Discriminator and generator phases of one iteration."""

    def __init__(self, G, D, cfg, speed=None, device_type="cpu"):
        self.G, self.D, self.cfg = G, D, cfg
        # Under DDP, a network whose gradients this phase throws away is called through its bare module:
        # no gradient all-reduce for D in the G phase, no buffer broadcast for a no-grad G in the D phase.
        self._G_bare, self._D_bare = unwrap(G), unwrap(D)
        flag = lambda name: bool(speed is not None and getattr(speed, name, False))  # noqa: E731
        self.batch_d, self.freeze_d_in_g = flag("batch_d"), flag("freeze_d_in_g")
        self.bf16_g, self.bf16_d = flag("bf16"), flag("bf16") and flag("bf16_d")
        self.device_type = device_type

    # ------------------------------------------------------------------------------------------ precision
    def _ac(self, on: bool):
        return torch.autocast(self.device_type, dtype=torch.bfloat16) if on else contextlib.nullcontext()

    def _for_d(self, x):
        """A G output as D consumes it: fp32 unless D itself runs under bf16 autocast."""
        return x if self.bf16_d else x.float()

    def _as_d_sees(self, x):
        """An image as D sees it: with d_blur low-passed, d_augment a random colour change, d_shift a random move,
        d_cutout a blanked square, d_noise noise.

        All are applied to real and generated images alike and are differentiable, so G's gradient passes
        through them. D must then judge by what survives them (shapes), not by tints, faint pixel patterns
        or the exact place of a training face's features, which a generator can imitate without drawing the
        expression.
        """
        if self.cfg.d_blur:
            # The critic's strided convolutions send period-2 gradients back to G, which then draws checkerboard
            # texture that fools D's classifier; blurred here (the blur is its own adjoint) G never receives
            # them, and unlike model.residual_blur G's own change stays sharp.
            x = binomial_blur(x)
        if self.cfg.d_augment:
            x = colour_jitter(x)
        shift = round(self.cfg.d_shift * x.size(-1))
        if shift:
            x = random_shift(x, shift)
        cutout = round(self.cfg.d_cutout * x.size(-1))
        if cutout:
            x = random_cutout(x, cutout)
        sigma = self.cfg.d_noise
        return x + sigma * torch.randn_like(x) if sigma else x

    def fake(self, x_real, c_trg):
        """G(x, c') with grad, through the (possibly DDP-wrapped) G, and its attention mask (None without one):
        the fake both phases of a G iteration share."""
        with self._ac(self.bf16_g):
            x_fake, mask = self.G(x_real, c_trg, return_mask=True)
        return self._for_d(x_fake), mask

    # ------------------------------------------------------------------------------------------ phases
    def classifier_phase(self, x_real, label_org):
        """l_cls * CE(D_cls(x), c) alone: D's classifier on real faces, before the GAN starts (optim.cls_warmup)."""
        with self._ac(self.bf16_d):
            out_src, out_cls = self.D(self._as_d_sees(x_real))
        d_cls = F.cross_entropy(out_cls.float(), label_org)
        # The critic's head joins with weight 0: DDP expects a gradient for every parameter of D.
        return self.cfg.lambda_cls * d_cls + 0 * out_src.float().mean(), {"D/loss_cls": d_cls}

    def discriminator_phase(self, x_real, c_trg, label_org, x_fake=None, gp=True):
        """-D(x) + D(G(x,c')) + l_cls * CE(D_cls(x), c) + l_gp * GP  [+ l_cls * cls_fake_source * CE(D_cls(G(x,c')), c)].

        x_fake: G(x_real, c_trg) already computed by the caller (it is detached here); None computes it.
        gp: False skips the penalty (loss.gp_every: the caller's other steps carry it, at gp_every times its weight).
        """
        cfg = self.cfg
        if x_fake is None:
            with torch.no_grad(), self._ac(self.bf16_g):
                x_fake = self._for_d(self._G_bare(x_real, c_trg))
        else:
            x_fake = x_fake.detach()
        with self._ac(self.bf16_d):
            if self.batch_d:
                n = x_real.size(0)
                out_src, out_cls = self.D(self._as_d_sees(torch.cat([x_real, x_fake.to(x_real.dtype)])))
                d_real, d_fake = -out_src[:n].float().mean(), out_src[n:].float().mean()
                d_cls = F.cross_entropy(out_cls[:n].float(), label_org)
                cls_fake = out_cls[n:]
            else:
                out_src, out_cls = self.D(self._as_d_sees(x_real))
                d_real = -out_src.float().mean()
                d_cls = F.cross_entropy(out_cls.float(), label_org)
                out_src, cls_fake = self.D(self._as_d_sees(x_fake))
                d_fake = out_src.float().mean()
            total = d_real + d_fake + cfg.lambda_cls * d_cls
            terms = {"D/loss_real": d_real, "D/loss_fake": d_fake, "D/loss_cls": d_cls}
            if gp:
                # Its double backward is the dearest part of a D step; StyleGAN2 found a regulariser applied on
                # every k-th step with k times the weight regularises as well, and so it does here (docs/learning.md).
                alpha = torch.rand(x_real.size(0), 1, 1, 1, device=x_real.device, dtype=x_real.dtype)
                x_hat = (alpha * x_real + (1 - alpha) * x_fake).requires_grad_(True)
                terms["D/loss_gp"] = d_gp = gradient_penalty(self.D(self._as_d_sees(x_hat))[0], x_hat)
                total = total + cfg.lambda_gp * cfg.gp_every * d_gp
        if cfg.cls_fake_source:
            # A classifier trained on real faces alone is fooled by faint texture long before G draws an
            # expression; taught that a fake still shows its source expression, it only yields to a real change.
            terms["D/loss_cls_fake"] = cls_src = F.cross_entropy(cls_fake.float(), label_org)
            total = total + cfg.lambda_cls * cfg.cls_fake_source * cls_src
        return total, terms

    def generator_phase(self, x_real, c_org, c_trg, label_trg, x_fake=None, mask=None):
        """-D(G(x,c')) + l_rec * |x - G(G(x,c'),c)|_1 + l_cls * g_cls_scale * CE(D_cls(G(x,c')), c')  [+ mask terms].

        x_fake, mask: G(x_real, c_trg) with its graph and its attention mask (from `fake`), shared with this
        iteration's D phase.
        """
        cfg = self.cfg
        if x_fake is None:
            x_fake, mask = self.fake(x_real, c_trg)
        frozen = []
        if self.freeze_d_in_g:   # D's weight gradients would be zeroed before D's next step anyway
            frozen = [p for p in self._D_bare.parameters() if p.requires_grad]
            for p in frozen:
                p.requires_grad_(False)
        try:
            with self._ac(self.bf16_d):
                out_src, out_cls = self._D_bare(self._as_d_sees(x_fake))
        finally:
            for p in frozen:
                p.requires_grad_(True)
        g_fake = -out_src.float().mean()
        g_cls = F.cross_entropy(out_cls.float(), label_trg)
        with self._ac(self.bf16_g):
            x_rec = self.G(x_fake, c_org)
        g_rec = (x_real - x_rec.float()).abs().mean()
        total = g_fake + cfg.lambda_rec * g_rec + cfg.lambda_cls * cfg.g_cls_scale * g_cls
        terms = {"G/loss_fake": g_fake, "G/loss_rec": g_rec, "G/loss_cls": g_cls}
        if mask is not None and (cfg.lambda_mask or cfg.lambda_mask_tv):
            # GANimation's regularisers: without them nothing stops the mask from opening everywhere (m = 1 is
            # the plain G); its mean keeps what the expression leaves alone exactly the input, its total
            # variation keeps the region it opens in one piece.
            m = mask.float()
            terms["G/loss_mask"] = g_mask = m.mean()
            terms["G/loss_mask_tv"] = g_tv = ((m[..., 1:, :] - m[..., :-1, :]).abs().mean()
                                              + (m[..., 1:] - m[..., :-1]).abs().mean())
            total = total + cfg.lambda_mask * g_mask + cfg.lambda_mask_tv * g_tv
        return total, terms
