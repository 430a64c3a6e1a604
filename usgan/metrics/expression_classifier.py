"""An independent expression classifier for the synthetic faces, trained on their ground truth.

It never sees a generated image in training, so its accuracy on generated faces measures whether the
generator produced the asked-for expression. Trained once per synthetic set and cached beside it.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..images import to_float


class ExpressionNet(nn.Module):
    """Four conv blocks and a linear head; input in [-1, 1], any size >= 32."""

    def __init__(self, c_dim=7, width=16):
        super().__init__()
        layers, ch = [], 3
        for w in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(ch, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            ch = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch, c_dim)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def light_augment(x: torch.Tensor) -> torch.Tensor:
    """Flips, brightness and tint, and one small shift for the whole batch: the project reader's augmentation."""
    x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(-1), x)
    x = x * torch.empty(len(x), 1, 1, 1).uniform_(0.8, 1.1) + torch.empty(len(x), 3, 1, 1).uniform_(-0.1, 0.1)
    dx, dy = torch.randint(-3, 4, (2,)).tolist()
    return torch.roll(x, (dy, dx), (2, 3))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 30, seed: int = 0,
                     batch_size: int = 64, make_net=ExpressionNet, augment=light_augment) -> nn.Module:
    """Fit make_net() on uint8 images; augmentation keeps it from memorising pixels."""
    torch.manual_seed(seed)
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    n = len(images)
    for _ in range(epochs):
        for s in range(0, n, batch_size):
            b = torch.randperm(n)[:batch_size]
            x = augment(to_float(images[b]))
            loss = F.cross_entropy(net(x), labels[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def predict(net: ExpressionNet, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Labels for images in [-1, 1] (generated images are clamped to the range real ones live in)."""
    return torch.cat([net(x[s:s + batch_size].clamp(-1, 1)).argmax(1) for s in range(0, len(x), batch_size)])


def load_or_train(data, cache_dir, progress=True, seed=0) -> tuple[ExpressionNet, float]:
    """The classifier for this data (trained on its train split, cached by data.tag()), and its test accuracy.

    seed 0 is the project's reader; other seeds give more readers of the same kind, to see how much a score
    depends on the one classifier that reads it.
    """
    name = f"expression-classifier-{data.tag()}" + (f"-seed{seed}" if seed else "")
    path = Path(cache_dir).expanduser() / f"{name}.pt"
    if path.is_file():
        blob = torch.load(path, weights_only=False)
        net = ExpressionNet()
        net.load_state_dict(blob["state_dict"])
        return net.eval(), blob["test_accuracy"]
    if progress:
        print(f"[metrics] training the independent expression classifier (seed {seed}) on {len(data.train_idx)} "
              "ground-truth faces")
    net = train_classifier(data.images[data.train_idx], data.labels[data.train_idx], seed=seed)
    acc = float((predict(net, data.as_float(data.test_idx)) == data.labels[data.test_idx]).float().mean())
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "test_accuracy": acc}, path)
    return net, acc
