"""The paper's architecture ablation on the synthetic faces: US-GAN, no skip, 6 blocks, 6 blocks + skip.

    python -m usgan.ablation                         # CPU-sized: about 10 minutes on 2 cores
    python -m usgan.ablation --only 1,5,6            # US-GAN against the paper's two proposed extensions
    python -m usgan.ablation --iters 3000 --device cuda --preset demo-paper --faces 24 --out outputs/ablation-3k
    python -m usgan.ablation --config my.yaml --iters 500

Every variant trains for the same iterations from the same seed on the same batches with the plain-PyTorch
Engine (no Ray), changing only the generator: residual blocks 1 or 6, ultimate skip on or off, and on request
(--only 5,6 or --extensions) the extensions the paper proposes: an attention mask, U-Net skips; the loss
weights, optimiser and data stay those of the chosen config. Each is then scored on the same test faces,
translated to every other expression:
- identity error to the ground truth: L1 to the same synthetic person showing the target expression (the set
  renders every identity in all seven), and ACD between output and that ground truth;
- expression accuracy from the independent classifier trained on the ground truth;
- ACD input vs output (the paper's) and the local verification score (a stand-in for Face++ FVS).
Writes DIR/ablation.json, DIR/ablation.md and DIR/ablation_grid.png (rows: faces x variants, columns: input
and the seven expressions), like the paper's Figures 10 and 11.
"""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .cli_common import add_device_flag, parser, require, run
from .config import config_from_cli, preset, set_value, validate
from .data.expressions import EXPRESSIONS
from .demo_stimuli import write_generator_outputs
from .errors import UsageError
from .models import count_parameters
from .run_outputs import sample_grids

ARCHITECTURE = ("g_res_blocks", "ultimate_skip", "attention", "intermediate_skips")
VARIANTS = [  # (name, study stimulus folder, the ARCHITECTURE settings)
    ("US-GAN (1 block + skip)", "usgan", (1, True, False, False)),
    ("no skip (1 block)", "no-skip", (1, False, False, False)),
    ("6 blocks (StarGAN-like)", "six-blocks", (6, False, False, False)),
    ("6 blocks + skip", "six-blocks-skip", (6, True, False, False)),
]
EXTENSIONS = [  # the paper's proposed next steps; not in the default set (each adds a quarter to the run)
    ("US-GAN + attention mask", "attention", (1, True, True, False)),
    ("U-Net skips, no block + skip", "intermediate-skips", (0, True, False, True)),
]


def ablation_config(a):
    """The base config: demo-paper (the paper's model at the demo size) at half width unless --preset/--config say."""
    # Half width keeps the four variants to ~10 minutes on 2 shared CPU cores.
    cfg = config_from_cli(a, base=preset("demo-paper", model__g_conv_dim=16, model__d_conv_dim=16))
    set_value(cfg, "data.sources", "synthetic")   # the scores need every identity in every expression
    return validate(cfg)


def train_variant(cfg, data, device, progress=True):
    """A fresh 1-worker usgan.train run of cfg, in this process; the same seed gives the same run."""
    from tqdm import tqdm

    from .step import single_run

    t0 = time.time()
    engine = None
    for engine, _ in tqdm(single_run(cfg, data, device), total=cfg.optim.num_iters, desc="  training", unit="it",
                          disable=not progress, leave=False):
        pass
    return engine, time.time() - t0


def labelled_rows(grids: list[tuple[str, Image.Image]], size: int) -> Image.Image:
    """Stack per-variant grid rows with the variant's name on the left and expression names on top."""
    label_w, head_h = 170, 16
    w = label_w + grids[0][1].width
    canvas = Image.new("RGB", (w, head_h + sum(g.height for _, g in grids)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(("input",) + EXPRESSIONS):
        draw.text((label_w + j * size + 2, 2), name[:9], fill="black")
    y = head_h
    for name, g in grids:
        canvas.paste(g, (label_w, y))
        draw.text((4, y + g.height // 2 - 6), name, fill="black")
        y += g.height
    return canvas


def build_parser():
    ap = parser("python -m usgan.ablation", __doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, help="training iterations per variant (default 120: the CPU-sized run)")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--preset", help="base preset (default: demo-paper at half width)")
    ap.add_argument("--config", help="base YAML config")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--faces", type=int, default=7,
                    help="test faces scored per variant, spread over source expressions (each to 6 expressions)")
    ap.add_argument("--grid-faces", type=int, default=2, help="faces shown in the grid")
    ap.add_argument("--stimuli", metavar="DIR", help="also write each variant's translations of the study demo's "
                    "faces as a study stimulus folder (DIR/inputs, DIR/methods/<variant>/...), the layout of "
                    "study_app/demo_stimuli")
    ap.add_argument("--only", help="comma list of variant numbers to run: 1-4 the paper's (the default), 5 attention, "
                    "6 intermediate skips")
    ap.add_argument("--extensions", action="store_true", help="also run variants 5 and 6")
    add_device_flag(ap)
    ap.add_argument("--out", default="outputs/ablation")
    ap.add_argument("--quiet", action="store_true")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    require("skimage", "face_recognition")
    if a.iters is None and not (a.preset or a.config):
        a.iters = 120
    if (a.iters is not None and a.iters < 1) or a.faces < 1 or a.grid_faces < 1:
        raise UsageError("--iters, --faces and --grid-faces must be >= 1")
    every = VARIANTS + EXTENSIONS
    variants = every if a.extensions else VARIANTS
    if a.only:
        numbers = [i.strip() for i in a.only.split(",")]
        if not all(i.isdigit() and 1 <= int(i) <= len(every) for i in numbers):
            raise UsageError(f"--only {a.only!r}: use numbers 1-{len(every)}, e.g. --only 1,5")
        variants = [every[int(i) - 1] for i in numbers]
    base = ablation_config(a)
    from .data import load_data
    from .evaluate import evaluate
    from .metrics.expression_classifier import load_or_train, predict

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    size = base.model.image_size
    print(f"[ablation] {len(variants)} variants x {base.optim.num_iters} iterations, batch {base.optim.batch_size}, "
          f"{size}px, G/D width {base.model.g_conv_dim}/{base.model.d_conv_dim}, device {a.device}; "
          f"scoring {a.faces} test faces x 6 targets; writing to {out}", flush=True)
    data = load_data(base.data, size, progress=not a.quiet)
    clf, clf_acc = load_or_train(data, base.data.cache_dir, progress=not a.quiet)
    print(f"[ablation] independent expression classifier: {clf_acc:.1%} on the ground-truth test faces", flush=True)
    faces = data.pick_faces("test", a.faces)
    grid_faces = data.as_float(faces[: a.grid_faces])
    cache: dict = {}
    rows, grids = [], []
    for name, folder, arch in variants:
        cfg = copy.deepcopy(base)   # only the architecture differs between variants
        for key, value in zip(ARCHITECTURE, arch):
            setattr(cfg.model, key, value)
        if not cfg.model.ultimate_skip:   # switches that act through the skip (a demo base has them) go with it
            cfg.model.identity_init = cfg.model.residual_blur = False
            cfg.model.residual_scale = 1.0
        print(f"[ablation] {name}: training", flush=True)
        engine, seconds = train_variant(cfg, data, a.device, progress=not a.quiet)
        G = engine.G_eval.cpu().eval()
        res = evaluate(G, data, classifier=lambda x: predict(clf, x), faces=faces, progress=not a.quiet,
                       encoding_cache=cache)
        o = res["overall"]
        m = cfg.model
        row = {"variant": name, "res_blocks": m.g_res_blocks, "ultimate_skip": m.ultimate_skip, "attention": m.attention,
               "intermediate_skips": m.intermediate_skips, "g_parameters": count_parameters(G),
               "iterations": cfg.optim.num_iters, "train_seconds": round(seconds, 1),
               "identity_l1_to_gt": o["l1"], "acd_to_gt": o["acd_to_target"],
               "expression_accuracy": o["expression_accuracy"], "acd": o["acd"],
               "local_fvs_mean": o["local_fvs_mean"], "ssim_to_gt": o["ssim"], "translations": o["translations"],
               "input_l1_to_gt": o["input_l1"], "input_acd_to_gt": o["input_acd_to_target"],
               "acd_box": res["acd_box"], "no_face_outputs": o["no_face_outputs"]}
        rows.append(row)
        print(f"[ablation] {name}: {seconds:.0f} s; L1 to GT {row['identity_l1_to_gt']:.4f}, expression acc "
              f"{row['expression_accuracy']:.1%}, ACD {row['acd']:.4f}", flush=True)
        grid, masks = sample_grids(G, grid_faces)
        grids += [(name, grid)] + ([(f"{name}: mask", masks)] if masks is not None else [])
        if a.stimuli:
            write_generator_outputs(a.stimuli, folder, G, size)
    box = res["acd_box"]
    md = [f"| variant | G params | identity error: L1 to GT ↓ | ACD ({box}) to GT ↓ | expression acc. ↑ | "
          f"ACD ({box}) ↓ | local FVS* ↑ | train s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['variant']} | {r['g_parameters']:,} | {r['identity_l1_to_gt']:.4f} | {r['acd_to_gt']:.4f} | "
                  f"{r['expression_accuracy']:.1%} | {r['acd']:.4f} | {r['local_fvs_mean']:.2f} | {r['train_seconds']} |")
    r0 = rows[0]
    md += ["", f"{base.optim.num_iters} iterations each, batch {base.optim.batch_size}, {size}px synthetic faces, "
           f"{r0['translations']} translations of {len(faces)} test faces per variant. Untouched input as output: "
           f"L1 to GT {r0['input_l1_to_gt']:.4f}, ACD to GT {r0['input_acd_to_gt']:.4f}. Independent classifier "
           f"accuracy on real (ground-truth) test faces: {clf_acc:.1%}.",
           f"ACD face box: {box} ({res['acd_box_note']})" + ("." if res["no_face_inputs"] is None else
           f"; no face detected in {res['no_face_inputs']} of {len(faces)} inputs, and in the outputs of "
           + ", ".join(f"{r['variant']}: {r['no_face_outputs']} of {r['translations']}" for r in rows) + "."),
           "\\* local verification score, a stand-in for Face++ FVS (usgan/metrics/identity.py); not comparable to it."]
    (out / "ablation.md").write_text("\n".join(md) + "\n")
    (out / "ablation.json").write_text(json.dumps({"config": base.to_dict(), "classifier_accuracy": clf_acc,
                                                   "faces": faces.tolist(), "rows": rows}, indent=1))
    labelled_rows(grids if a.grid_faces == 1 else
                  [(f"{n} #{i}", Image.fromarray(np.asarray(g)[i * size:(i + 1) * size]))
                   for i in range(len(grid_faces)) for n, g in grids], size).save(out / "ablation_grid.png")
    print("\n".join(md))
    print(f"[ablation] wrote {out / 'ablation.md'}, {out / 'ablation.json'} and {out / 'ablation_grid.png'}"
          + (f"; study stimuli in {a.stimuli}" if a.stimuli else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
