"""Copy a trained demo generator into usgan/weights/, with its config and the scores it reaches.

    python scripts/ship_weights.py ~/usgan-runs/paper-demo-long            # a run folder or any checkpoint

Writes usgan/weights/demo-G.ckpt (the authors' plain state-dict layout), demo-G.yaml (its config, which
`load_generator` reads beside the file) and demo-G.json (where it came from, the crop geometry of its data, and
its target accuracy and L1 on every held-out translation of the synthetic set, scored by the independent
classifier, as benchmarks/learning.py scores).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from usgan.checkpoints import ENGINE_FILE, SHIPPED_G, checkpoint_file, load_generator
from usgan.data import load_data, training_crop
from usgan.metrics.expression_classifier import load_or_train
from usgan.metrics.synthetic_scores import translation_scores

MAX_BYTES = 10 * 2 ** 20


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a run folder, engine.pt or *-G.ckpt of a demo-sized run")
    ap.add_argument("--note", default="", help="one line on how it was trained, kept in demo-G.json")
    a = ap.parse_args(argv)
    G, cfg = load_generator(a.checkpoint)
    if cfg.data.sources != ["synthetic"]:
        raise SystemExit(f"error: {a.checkpoint} was trained on {cfg.data.sources}; ship synthetic-only weights")
    data = load_data(cfg.data, cfg.model.image_size)
    classifier, classifier_accuracy = load_or_train(data, cfg.data.cache_dir)
    scores = translation_scores(G, data, classifier)
    SHIPPED_G.parent.mkdir(exist_ok=True)
    torch.save(G.state_dict(), SHIPPED_G)
    if SHIPPED_G.stat().st_size > MAX_BYTES:
        SHIPPED_G.unlink()
        raise SystemExit(f"error: the generator is over {MAX_BYTES >> 20} MB; ship a demo-sized one")
    cfg.save(SHIPPED_G.with_suffix(".yaml"))
    source = checkpoint_file(a.checkpoint)
    iteration = torch.load(source, weights_only=True)["iteration"] if source.name == ENGINE_FILE else None
    SHIPPED_G.with_suffix(".json").write_text(json.dumps({
        "trained_on": "the built-in synthetic faces only; not meant for real photos",
        "crop": training_crop(cfg.data).to_dict(), "source": str(source), "iteration": iteration, "note": a.note,
        "held_out_translations": scores["translations"],
        "target_accuracy": round(scores["target_accuracy"], 4), "l1_to_target": round(scores["l1_to_target"], 4),
        "l1_input_to_target": round(scores["l1_input_to_target"], 4),
        "classifier_accuracy_on_real_held_out": round(classifier_accuracy, 4),
        "shipped": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                         f"torch {torch.__version__}"}, indent=1) + "\n")
    print(f"wrote {SHIPPED_G} ({SHIPPED_G.stat().st_size / 2 ** 20:.1f} MB): target accuracy "
          f"{scores['target_accuracy']:.1%}, L1 {scores['l1_to_target']:.4f} (input {scores['l1_input_to_target']:.4f})")


if __name__ == "__main__":
    main()
