"""Export a generator to ONNX with a dynamic batch, and check it against PyTorch with ONNX Runtime.

    python -m usgan.export --checkpoint authors --onnx usgan.onnx
    python -m usgan.export --checkpoint runs/usgan-demo --onnx demo.onnx --check-batch 7

The graph takes `image` (N, 3, S, S) in [-1, 1] and `target` (N, 7) one-hot, and returns `output`
(N, 3, S, S), unclamped like the PyTorch module (clamp to [-1, 1] before saving an image). Its metadata
`usgan.crop.eye_y` / `usgan.crop.eye_gap` say where the eye centres must sit in the input crop (fractions of
its side), as in the model's training data. InstanceNorm
uses per-image statistics, as the authors' code does at test time. The check runs random faces and all
seven targets through both and reports the largest absolute difference.

    import onnxruntime as ort
    sess = ort.InferenceSession("usgan.onnx")
    out = sess.run(None, {"image": x.numpy(), "target": c.numpy()})[0]
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_weights
from .cli_common import add_checkpoint_flag, parser, require, resolve_config, run
from .errors import UsageError
from .translate import unwrap

OPSET = 18


def export_onnx(G, path, image_size: int, opset: int = OPSET, metadata: dict | None = None) -> Path:
    """Write G as ONNX with a symbolic batch dimension (torch.export-based exporter) and metadata key/values."""
    G = unwrap(G).eval().float().cpu()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(2, 3, image_size, image_size)
    c = torch.eye(G.c_dim)[:2]
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        # The exporter warns that image and target share one batch symbol: that is the intent.
        warnings.simplefilter("ignore")
        torch.onnx.export(G, (x, c), str(path), input_names=["image", "target"], output_names=["output"],
                          dynamic_shapes={"x": {0: batch}, "c": {0: batch}}, dynamo=True, opset_version=opset,
                          verbose=False, optimize=True)
    if metadata:
        import onnx

        model = onnx.load(str(path))
        for k, v in metadata.items():
            model.metadata_props.add(key=k, value=str(v))
        onnx.save(model, str(path))
    return path


@torch.no_grad()
def check_onnx(G, path, image_size: int, batch: int = 7, seed: int = 0) -> dict:
    """Largest |ONNX Runtime - PyTorch| over a random batch (every target once) and a batch of one."""
    import onnxruntime as ort

    G = unwrap(G).eval().float().cpu()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    diffs = {}
    for n in sorted({1, batch}):
        x = torch.rand(n, 3, image_size, image_size, generator=g) * 2 - 1
        c = torch.eye(G.c_dim)[torch.arange(n) % G.c_dim]
        ref = G(x, c).numpy()
        got = sess.run(None, {"image": x.numpy(), "target": c.numpy()})[0]
        if got.shape != ref.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} differs from PyTorch {ref.shape}")
        diffs[n] = float(np.abs(got - ref).max())
    return {"max_abs_diff": max(diffs.values()), "per_batch": diffs, "onnxruntime": ort.__version__}


def build_parser():
    ap = parser("python -m usgan.export", __doc__.split("\n\n")[0])
    add_checkpoint_flag(ap, required=True)
    ap.add_argument("--onnx", required=True, help="output .onnx file")
    ap.add_argument("--preset", help="config preset for settings the checkpoint lacks (e.g. stargan)")
    ap.add_argument("--config", help="YAML config for settings the checkpoint lacks")
    ap.add_argument("--image-size", type=int, help="input size (default: the config's model.image_size)")
    ap.add_argument("--check-batch", type=int, default=7, help="batch size of the parity check")
    ap.add_argument("--tolerance", type=float, default=1e-3, help="fail when the max abs difference exceeds this")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    require("onnx", "onnxscript", "onnxruntime")
    if not a.onnx.endswith(".onnx"):
        raise UsageError(f"--onnx {a.onnx} should name a .onnx file")
    if a.check_batch < 1:
        raise UsageError("--check-batch must be >= 1")
    w = load_weights(a.checkpoint)
    G, cfg = w.G, resolve_config(w.cfg, a)
    size = a.image_size or cfg.model.image_size
    if size % 4:
        raise UsageError(f"--image-size {size} must be a multiple of 4 (two stride-2 down-samplings)")
    print(f"[export] {w.source} -> {a.onnx}: {size}x{size} input, dynamic batch, opset {OPSET}; feed it crops with "
          f"{w.crop}", flush=True)
    t0 = time.time()
    # A program feeding the graph must crop faces as the model's training data was cropped.
    meta = {"usgan.crop.eye_y": w.crop.eye_y, "usgan.crop.eye_gap": w.crop.eye_gap, "usgan.weights": w.source}
    path = export_onnx(G, a.onnx, size, metadata=meta)
    check = check_onnx(G, path, size, a.check_batch)
    check.update({"onnx": str(path), "bytes": path.stat().st_size, "seconds": round(time.time() - t0, 1),
                  "checkpoint": w.source, "crop_geometry": w.crop.to_dict()})
    print(f"[export] ONNX Runtime {check['onnxruntime']} vs PyTorch: max abs difference {check['max_abs_diff']:.3g} "
          f"(batches {', '.join(map(str, check['per_batch']))}); {check['bytes'] / 1e6:.1f} MB in {check['seconds']} s")
    print(json.dumps(check))
    if check["max_abs_diff"] > a.tolerance:
        raise UsageError(f"ONNX output differs from PyTorch by {check['max_abs_diff']:.3g} > --tolerance {a.tolerance}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
