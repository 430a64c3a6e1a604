"""Pixel metrics against a known ground-truth image (the synthetic set, where every target exists).

    from usgan.metrics.image_quality import image_scores
    image_scores(outputs, targets)     # per-image arrays: l1 (in [-1, 1] units), psnr (dB, 8-bit), ssim
"""
from __future__ import annotations

import numpy as np

from ..images import to_hwc_uint8


def image_scores(outputs, targets) -> dict[str, np.ndarray]:
    """L1, PSNR and SSIM of each output to its target, computed on the saved 8-bit images."""
    # Imported here: `python -m usgan.evaluate` then reports a missing `eval` extra in one line (cli_common.run).
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out, trg = to_hwc_uint8(outputs), to_hwc_uint8(targets)
    if out.shape != trg.shape:
        raise ValueError(f"outputs {out.shape} and targets {trg.shape} differ in shape")
    o, t = out.astype(np.float64), trg.astype(np.float64)
    # L1 in [-1, 1] units, the scale translation_scores and the training loss use.
    l1 = np.abs(o - t).mean(axis=(1, 2, 3)) / 127.5
    # An exact copy has infinite PSNR; cap it at 100 dB so means stay finite.
    psnr = np.array([min(peak_signal_noise_ratio(a, b, data_range=255), 100.0) if not np.array_equal(a, b) else 100.0
                     for a, b in zip(trg, out)])
    win = min(7, out.shape[1] - (1 - out.shape[1] % 2), out.shape[2] - (1 - out.shape[2] % 2))
    ssim = np.array([structural_similarity(a, b, data_range=255, channel_axis=-1, win_size=win)
                     for a, b in zip(trg, out)])
    return {"l1": l1, "psnr": psnr, "ssim": ssim}
