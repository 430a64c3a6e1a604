"""What a researcher looks at during a run: the progress line, TensorBoard scalars and sample grids."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from PIL import Image

from .data.expressions import EXPRESSIONS
from .images import to_uint8
from .translate import translate


def _fmt_eta(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class ProgressLog:
    """`[it 120/600] D/real -1.2 ... | 21.3 img/s | ETA 4m12s` to stdout, progress.log and TensorBoard."""

    def __init__(self, run_dir, total: int, images_per_iter: int, start: int = 0):
        self.total, self.images_per_iter = total, images_per_iter
        self.t_last, self.it_last = time.time(), start
        self.last_terms: dict = {}   # G terms exist only every n_critic-th iteration: show the latest
        self.dir = Path(run_dir) if "://" not in str(run_dir) else None
        self.file = self.tb = None
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.file = open(self.dir / "progress.log", "a")
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(self.dir / "tensorboard"))
            except ImportError:  # tensorboard is optional at run time
                self.tb = None

    @staticmethod
    def _echo(line: str) -> None:
        # Not print(): inside a Ray Train worker print is patched to log *and* echo, which doubles every line.
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        self._echo(f"[train] {text}")
        if self.file:
            self.file.write(f"# {text}\n")
            self.file.flush()

    def write(self, it: int, terms: dict) -> None:
        self.last_terms.update(terms)
        terms = self.last_terms
        now = time.time()
        rate = (it - self.it_last) * self.images_per_iter / max(now - self.t_last, 1e-9)
        eta = (self.total - it) * self.images_per_iter / max(rate, 1e-9)
        self.t_last, self.it_last = now, it
        losses = " ".join(f"{k} {v:.4f}" for k, v in terms.items() if k != "lr")
        line = f"[it {it}/{self.total}] {losses} | lr {terms.get('lr', 0):.2e} | {rate:.1f} img/s | ETA {_fmt_eta(eta)}"
        self._echo(line)
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()
        if self.tb:
            for k, v in terms.items():
                self.tb.add_scalar(k, v, it)
            self.tb.add_scalar("speed/images_per_s", rate, it)

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb:
            self.tb.close()


def sample_grid(engine_or_G, faces: torch.Tensor, c_dim: int = 7) -> Image.Image:
    """Rows: faces; columns: the input, then the face translated to each of the seven expressions."""
    return sample_grids(engine_or_G, faces, c_dim)[0]


def sample_grids(engine_or_G, faces: torch.Tensor, c_dim: int = 7) -> tuple[Image.Image, Image.Image | None]:
    """The sample grid, and where G has an attention mask (model.attention) the same grid of masks (white: 1)."""
    G = getattr(engine_or_G, "G_eval", engine_or_G)
    outs = [translate(G, faces, torch.full((len(faces),), k), return_mask=True) for k in range(c_dim)]
    grid = _tile(to_uint8(torch.stack([faces.cpu()] + [y.cpu() for y, _ in outs], 1)))
    if outs[0][1] is None:
        return grid, None
    masks = [m.cpu().expand(-1, 3, -1, -1) * 2 - 1 for _, m in outs]   # [0, 1] shown as black to white
    return grid, _tile(to_uint8(torch.stack([faces.cpu()] + masks, 1)))


def _tile(images: torch.Tensor) -> Image.Image:
    """(rows, columns, 3, s, s) uint8 to one picture."""
    n, cols, _, s, _ = images.shape
    return Image.fromarray(images.permute(0, 3, 1, 4, 2).reshape(n * s, cols * s, 3).numpy())


def grid_faces(data) -> torch.Tensor:
    """The grid's rows: one held-out face per source expression, from different subjects where there are several."""
    return data.pick_faces("test" if len(data.test_idx) else "train", len(EXPRESSIONS))


def save_sample_grid(engine, faces, path) -> Path:
    """The grid at path, and G's masks beside it as NAME_mask.png where it has them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid, masks = sample_grids(engine, faces)
    grid.save(path)
    if masks is not None:
        masks.save(path.with_name(f"{path.stem}_mask{path.suffix}"))
    return path

