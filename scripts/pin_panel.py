"""Train the reader panel on the demo preset's data and pin it in usgan/metrics/panel_readers/.

    python scripts/pin_panel.py            # after a change to the synthetic renders or to the readers

benchmarks/learning.py judges generators with these files on every machine. A reader retrained elsewhere is a
different reader (another CPU rounds its 40 epochs differently), so they are trained once and committed. Readers
already in the cache (~/.cache/usgan) for this data are pinned as they are; the rest are trained first.
"""
from __future__ import annotations

import argparse

from usgan.config import preset, validate
from usgan.data import load_data
from usgan.metrics.panel import PINNED, REQUIRED_ACCURACY, load_or_train_panel, pin_panel


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=40)
    a = ap.parse_args(argv)
    cfg = validate(preset("demo"))
    data = load_data(cfg.data, cfg.model.image_size)
    tag = data.tag()   # a hash of every pixel: once
    panel = load_or_train_panel(data, cfg.data.cache_dir, epochs=a.epochs, pinned=None)
    weak = [r["name"] for r in panel if r["held_out_accuracy"] < REQUIRED_ACCURACY]
    if weak:
        raise SystemExit(f"readers {', '.join(weak)} read under {REQUIRED_ACCURACY:.0%} of held-out renders; "
                         "not pinned: change their training, then run this again")
    for r, path in zip(panel, pin_panel(panel, tag, a.epochs)):
        print(f"{r['name']:9} {r['held_out_accuracy']:.1%} held-out -> {path}")
    print(f"pinned for data {tag} in {PINNED}")


if __name__ == "__main__":
    main()
