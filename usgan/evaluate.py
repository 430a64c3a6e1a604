"""Score a generator on a test split: every test face translated to every other expression.

    python -m usgan.evaluate --checkpoint runs/usgan-demo/checkpoint_000002 --out eval/demo
    python -m usgan.evaluate --checkpoint authors --data kdef:/data/KDEF --align \
        --fer-weights weights/facial_emotion_recognition-0.3.4.tar.gz --out eval/kdef
    python -m usgan.evaluate --checkpoint 200000-G.ckpt --preset stargan --data rafd:/data/RaFD --out eval/stargan

Writes DIR/metrics.json and DIR/metrics.md: one row per target expression plus "all", with
- ACD (the paper's: mean squared distance of face_recognition encodings, input vs output; lower is better),
  the face box found by face_recognition's detector as its face_encodings does by default (crops where it
  finds none are encoded whole and counted), or with --acd-box whole-crop the whole crop; tables name which;
- a local verification score 0-100 from the same encodings, a LOCAL STAND-IN for the paper's Face++ FVS
  (see usgan/metrics/identity.py for the mapping; not comparable to Face++ numbers);
- expression accuracy from an independent classifier: on the synthetic set one trained on its ground truth,
  on real faces the pretrained FER2013 network when --fer-weights is given (else not reported), with the
  classifier's own accuracy on the input faces stated beside it;
- where the true target image exists (the synthetic set): L1 / PSNR / SSIM and ACD to the ground truth,
  and the same numbers for the untouched input, the baseline to beat.
The test split is the subject-disjoint one training used (same data.split_seed and data.test_fraction).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_weights
from .cli_common import add_checkpoint_flag, parser, require, resolve_config, run
from .data.expressions import EXPRESSIONS, parse_targets
from .errors import UsageError
from .images import to_float, to_uint8
from .metrics.identity import ACD_BOXES, LOCAL_FVS_LABEL, encode, squared_distances, verification_scores
from .metrics.image_quality import image_scores
from .translate import translate


def translate_uint8(G, images_uint8: torch.Tensor, target: int, batch_size: int = 32) -> torch.Tensor:
    """uint8 faces -> uint8 outputs for one target, clamped only when converted, as the authors save them."""
    return torch.cat([to_uint8(translate(G, to_float(b), torch.full((len(b),), target)))
                      for b in images_uint8.split(batch_size)])


def choose_classifier(data, cfg, fer_weights=None, progress=True):
    """(predict_fn, description) of the independent expression classifier, or (None, reason)."""
    synthetic = all(r.source == "synthetic" for r in data.records)
    if synthetic and not fer_weights:
        from .metrics.expression_classifier import load_or_train, predict
        net, acc = load_or_train(data, cfg.data.cache_dir, progress=progress)
        return (lambda x: predict(net, x)), {"name": "independent CNN trained on the synthetic ground truth",
                                               "accuracy_on_its_test_split": acc}
    if fer_weights:
        from .errors import FERWeightsError
        from .metrics.fer_classifier import fer_predict, load_fer
        try:
            net, info = load_fer(fer_weights)
        except FERWeightsError as e:
            raise UsageError(str(e)) from None
        return (lambda x: fer_predict(net, x)), {"name": "facial-emotion-recognition FER2013 CNN (MIT)", **info}
    return None, {"name": None, "reason": "real faces and no --fer-weights: expression accuracy not reported"}


def _mean(v):
    return float(np.mean(v)) if len(v) else None


def _row(name, n, enc_d2, scores, pred_ok, gt, no_face=None) -> dict:
    """Aggregate one set of translations into a table row."""
    row = {"target": name, "translations": n, "acd": _mean(enc_d2),
           "no_face_outputs": None if no_face is None else int(np.sum(no_face)),
           "local_fvs_mean": _mean(scores), "local_fvs_std": float(np.std(scores)) if len(scores) else None,
           "same_person_rate": _mean(np.sqrt(enc_d2) < 0.6) if len(enc_d2) else None,
           "expression_accuracy": _mean(pred_ok) if pred_ok is not None else None}
    if gt and len(gt["l1"]):
        row.update({k: _mean(gt[k]) for k in ("l1", "psnr", "ssim", "acd_to_target",
                                              "input_l1", "input_psnr", "input_ssim", "input_acd_to_target")})
    return row


def evaluate(G, data, targets=None, classifier=None, batch_size=32, max_faces=None, split="test",
             progress=True, faces=None, encoding_cache: dict | None = None, acd_box: str = "detected") -> dict:
    """Metrics per target expression and overall; `classifier` maps [-1, 1] images to labels (or None).

    `faces` (dataset indices) overrides split/max_faces; `encoding_cache` (index -> (encoding, no face found),
    for one acd_box) lets several generators scored on the same faces encode the real images once.
    """
    from tqdm import tqdm

    targets = list(range(G.c_dim)) if targets is None else targets
    idx = data.pick_faces(split, max_faces) if faces is None else torch.as_tensor(faces)
    if len(idx) == 0:
        raise UsageError(f"the {split} split is empty; lower data.test_fraction's granularity or add subjects")
    labels = data.labels[idx]
    gt = data.ground_truth()
    subjects = [data.records[i].subject for i in idx.tolist()]
    jobs = {k: (labels != k).nonzero().flatten() for k in targets}
    n_out = sum(len(j) for j in jobs.values())
    n_gt = sum(int((subjects[p], k) in gt) for k, j in jobs.items() for p in j.tolist())
    bar = tqdm(total=len(idx) + n_out + n_gt, desc="encodings", unit="face", disable=not progress)

    inputs = data.images[idx]
    enc_gt_cache: dict[int, np.ndarray] = {} if encoding_cache is None else encoding_cache
    def encode_real(indices):
        todo = [i for i in indices if i not in enc_gt_cache]
        if todo:
            enc, no_face = encode(data.images[todo], batch_size, bar, acd_box)
            enc_gt_cache.update(zip(todo, zip(enc, no_face)))
        bar.update(len(indices) - len(todo))
        return np.stack([enc_gt_cache[i][0] for i in indices])

    enc_in = encode_real(idx.tolist())
    detected = acd_box == "detected"
    no_face_in = sum(bool(enc_gt_cache[i][1]) for i in idx.tolist()) if detected else None
    rows, pooled = [], {"d2": [], "fvs": [], "ok": [], "gt": {}, "no_face": []}
    for k in targets:
        pos = jobs[k]
        if len(pos) == 0:
            continue
        out = translate_uint8(G, inputs[pos], k, batch_size)
        enc_out, no_face_out = encode(out, batch_size, bar, acd_box)
        d2 = squared_distances(enc_in[pos], enc_out)
        fvs = verification_scores(enc_in[pos], enc_out)
        ok = None
        if classifier is not None:
            ok = (classifier(to_float(out)) == k).numpy().astype(float)
        # Ground truth: the same subject showing the target expression (every synthetic identity has all seven).
        have = [(j, gt[(subjects[p], k)]) for j, p in enumerate(pos.tolist()) if (subjects[p], k) in gt]
        g = {}
        if have:
            sel = torch.tensor([j for j, _ in have])
            tgt_idx = [t for _, t in have]
            enc_t = encode_real(tgt_idx)
            truth = data.images[tgt_idx]
            g = {f"{k2}": v for k2, v in image_scores(out[sel], truth).items()}
            g.update({f"input_{k2}": v for k2, v in image_scores(inputs[pos][sel], truth).items()})
            g["acd_to_target"] = squared_distances(enc_out[sel.numpy()], enc_t)
            g["input_acd_to_target"] = squared_distances(enc_in[pos.numpy()][sel.numpy()], enc_t)
        rows.append(_row(EXPRESSIONS[k], len(pos), d2, fvs, ok, g, no_face_out if detected else None))
        pooled["d2"].append(d2), pooled["fvs"].append(fvs), pooled["no_face"].append(no_face_out)
        if ok is not None:
            pooled["ok"].append(ok)
        for key, v in g.items():
            pooled["gt"].setdefault(key, []).append(v)
    bar.close()
    cat = lambda v: np.concatenate(v) if v else np.array([])  # noqa: E731
    overall = _row("all", int(sum(len(v) for v in pooled["d2"])), cat(pooled["d2"]), cat(pooled["fvs"]),
                   cat(pooled["ok"]) if pooled["ok"] else None, {k: cat(v) for k, v in pooled["gt"].items()},
                   cat(pooled["no_face"]) if detected else None)
    return {"per_expression": rows, "overall": overall, "faces": len(idx), "acd_box": acd_box,
            "acd_box_note": ACD_BOXES[acd_box], "no_face_inputs": no_face_in}


def acd_note(result: dict) -> str:
    """One line naming the ACD's face box and, where detected, how many crops had no face and were encoded whole."""
    line = f"ACD face box: {result['acd_box']} ({result['acd_box_note']})."
    if result.get("no_face_inputs") is not None:
        o = result["overall"]
        line += (f" No face detected in {result['no_face_inputs']} of {result['faces']} inputs and "
                 f"{o['no_face_outputs']} of {o['translations']} outputs.")
    return line


COLUMNS = [("target", "target", "{}"), ("translations", "n", "{}"), ("acd", "ACD ↓", "{:.4f}"),
           ("local_fvs_mean", "local FVS* ↑", "{:.2f}"), ("local_fvs_std", "± std", "{:.2f}"),
           ("same_person_rate", "same person ↑", "{:.1%}"), ("expression_accuracy", "expr. acc. ↑", "{:.1%}"),
           ("l1", "L1 to GT ↓", "{:.4f}"), ("psnr", "PSNR ↑", "{:.2f}"), ("ssim", "SSIM ↑", "{:.3f}"),
           ("acd_to_target", "ACD to GT ↓", "{:.4f}")]


def markdown(result: dict, header: str = "") -> str:
    """The metrics as a markdown table (columns without any value are left out)."""
    rows = result["per_expression"] + [result["overall"]]
    box = result["acd_box"]
    cols = [(k, h.replace("ACD", f"ACD ({box})"), f) for k, h, f in COLUMNS if any(r.get(k) is not None for r in rows)]
    fmt = lambda v, f: "–" if v is None else f.format(v)  # noqa: E731
    lines = [header] if header else []
    lines += ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [fmt(r.get(c[0]), c[2]) for c in cols]
        if r["target"] == "all":
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    o = result["overall"]
    lines.append("")
    lines.append(acd_note(result))
    lines.append(f"\\* {LOCAL_FVS_LABEL}: 100 / (1 + exp((d - 0.6) / 0.1)) of the plain encoding distance d.")
    if o.get("input_l1") is not None:
        lines.append(f"Untouched input as the output (the baseline to beat): L1 {o['input_l1']:.4f}, "
                     f"PSNR {o['input_psnr']:.2f}, SSIM {o['input_ssim']:.3f}, ACD to GT {o['input_acd_to_target']:.4f}.")
    return "\n".join(lines) + "\n"


def build_parser():
    ap = parser("python -m usgan.evaluate", __doc__.split("\n\n")[0])
    add_checkpoint_flag(ap)
    ap.add_argument("--data", action="append", metavar="KIND:PATH", help="kdef:DIR, rafd:DIR, cfee:DIR, folder:DIR, "
                    "manifest:CSV or synthetic; repeat to combine (default: the checkpoint's own)")
    ap.add_argument("--preset", help="take data settings from this preset instead of the checkpoint's config")
    ap.add_argument("--config", help="take data settings from this YAML config")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--out", required=True, help="folder for metrics.json and metrics.md")
    ap.add_argument("--targets", default="all", help="'all' or a list like happy,sad")
    ap.add_argument("--split", default="test", choices=("test", "train"))
    ap.add_argument("--max-faces", type=int,
                    help="evaluate N faces of the split, spread over source expressions and subjects")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--acd-box", choices=tuple(ACD_BOXES), default="detected",
                    help="ACD's face box: face_recognition's detected box (its default, the paper's) or the whole crop")
    ap.add_argument("--fer-weights", help="facial-emotion-recognition sdist (.tar.gz), its model.pkl or folder")
    ap.add_argument("--align", action="store_true", help="detect and align real photos (data.align_faces)")
    ap.add_argument("--skip-bad", action="store_true", help="leave out unreadable or misnamed images")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    require("skimage", "face_recognition")
    if a.batch_size < 1 or (a.max_faces is not None and a.max_faces < 1):
        raise UsageError("--batch-size and --max-faces must be >= 1")
    targets = parse_targets(a.targets)
    w = load_weights(a.checkpoint)
    G = w.G
    cfg = resolve_config(w.cfg, a)
    if a.align:
        cfg.data.align_faces = True
        cfg.data.align_eyes = [w.crop.eye_y, w.crop.eye_gap]    # real photos cropped as the model's data was
    from .data import load_data

    size = cfg.model.image_size
    print(f"[evaluate] {w.source}: generator with {G.c_dim} expressions, "
          f"{'US-GAN skip' if G.ultimate_skip else 'no skip'}; data {', '.join(cfg.data.sources)} at {size}px, "
          f"{a.split} split", flush=True)
    t0 = time.time()
    data = load_data(cfg.data, size, skip_bad=a.skip_bad, progress=not a.quiet)
    classify, clf_info = choose_classifier(data, cfg, a.fer_weights, progress=not a.quiet)
    if classify is not None and "accuracy_on_its_test_split" not in clf_info:
        idx = data.pick_faces(a.split, a.max_faces)
        acc = float((classify(data.as_float(idx)) == data.labels[idx]).float().mean())
        clf_info["accuracy_on_input_faces"] = acc
    print(f"[evaluate] expression classifier: {json.dumps(clf_info)}", flush=True)
    result = evaluate(G, data, targets, classify, a.batch_size, a.max_faces, a.split, progress=not a.quiet,
                      acd_box=a.acd_box)
    result.update({"checkpoint": w.source, "weights": w.line(), "data": cfg.data.sources, "image_size": size,
                   "split": a.split,
                   "classifier": clf_info, "local_fvs_note": LOCAL_FVS_LABEL, "seconds": round(time.time() - t0, 1)})
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    clf_line = (f"Expression classifier: {clf_info['name']}; its accuracy: "
                f"{clf_info.get('accuracy_on_its_test_split', clf_info.get('accuracy_on_input_faces')):.1%}"
                if classify else f"Expression accuracy: {clf_info['reason']}")
    header = (f"# Evaluation of `{w.source}`\n\n{w.line()} Data: {', '.join(cfg.data.sources)}, {a.split} split, "
              f"{result['faces']} faces, {size}px. {clf_line}.\n")
    md = markdown(result, header)
    (out / "metrics.md").write_text(md)
    print(md)
    print(f"[evaluate] wrote {out / 'metrics.json'} and {out / 'metrics.md'} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
