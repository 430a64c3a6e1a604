"""All seven expressions of one 128-px face: our fastest inference path against the authors' eager fp32 module.

    python benchmarks/inference_speed.py                  # paper-size US-GAN generator, random weights
    python benchmarks/inference_speed.py --checkpoint authors --repeats 30     # after usgan-weights get authors
    python benchmarks/inference_speed.py --skip compile   # leave out a path (compile takes a while to build)

Baseline: the authors' test loop, i.e. the stock-PyTorch module in train mode (nn.InstanceNorm2d with running
stats), one eager fp32 forward per target label, under no_grad. Candidates, each producing all seven
expressions in one batched call: eager fp32, channels_last, bf16 autocast (only where the CPU has native bf16,
i.e. AVX512-BF16/AMX), torch.compile, and ONNX Runtime. Every path is timed round-robin (so load from other
processes hits all of them alike); the fastest median wins. The speed-up ratio and each path's max abs
difference to the baseline output (unclamped, and in 8-bit levels after clamping as saved) are printed; the
last line is one JSON object with the machine's details.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_name, describe

from usgan.authors_reference import AuthorsGenerator, authors_all_expressions
from usgan.images import to_uint8
from usgan.models import Generator
from usgan.step import bf16_supported


def build_paths(G: Generator, x7: torch.Tensor, c7: torch.Tensor, skip: set[str], tmp: Path) -> dict:
    """name -> (callable returning (7,3,S,S) fp32, setup seconds); only paths this machine can run."""
    paths, setup = {}, {}

    def eager():
        return G(x7, c7)
    paths["eager_fp32_batched"] = eager
    setup["eager_fp32_batched"] = 0.0

    G_cl = Generator(G.c_dim, G.main[0].out_channels, sum(1 for m in G.main if m.__class__.__name__ == "ResidualBlock"),
                     G.ultimate_skip).eval()
    G_cl.load_state_dict(G.state_dict())
    G_cl = G_cl.to(memory_format=torch.channels_last)
    x7_cl = x7.contiguous(memory_format=torch.channels_last)
    if "channels_last" not in skip:
        paths["channels_last_fp32"] = lambda: G_cl(x7_cl, c7)
        setup["channels_last_fp32"] = 0.0
    if "bf16" not in skip and bf16_supported(torch.device("cpu")):
        def bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return G_cl(x7_cl, c7).float()
        paths["bf16_autocast_channels_last"] = bf16
        setup["bf16_autocast_channels_last"] = 0.0
    if "compile" not in skip:
        t = time.perf_counter()
        try:
            Gc = torch.compile(G_cl, dynamic=False)
            Gc(x7_cl, c7)
            paths["compile_channels_last_fp32"] = lambda: Gc(x7_cl, c7)
            setup["compile_channels_last_fp32"] = time.perf_counter() - t
            if "bf16" not in skip and bf16_supported(torch.device("cpu")):
                t = time.perf_counter()

                def cbf16():
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        return Gc(x7_cl, c7).float()
                cbf16()
                paths["compile_bf16_channels_last"] = cbf16
                setup["compile_bf16_channels_last"] = time.perf_counter() - t
        except Exception as e:  # noqa: BLE001 - a missing compiler toolchain must not stop the benchmark
            print(f"[bench] torch.compile unavailable here: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    if "onnx" not in skip:
        import onnxruntime as ort

        from usgan.export import export_onnx
        t = time.perf_counter()
        path = export_onnx(G, tmp / "g.onnx", x7.shape[-1])
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {"image": x7.numpy(), "target": c7.numpy()}
        sess.run(None, feed)
        paths["onnxruntime_fp32"] = lambda: torch.from_numpy(sess.run(None, feed)[0])
        setup["onnxruntime_fp32"] = time.perf_counter() - t
    return paths, setup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="authors (usgan-weights get authors) or a path to a file in their layout "
                    "(default: random paper-size weights)")
    ap.add_argument("--repeats", type=int, default=15, help="timed rounds per path")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma list of paths to leave out: channels_last,bf16,compile,onnx")
    ap.add_argument("--threads", type=int, default=0, help="torch/ORT threads (default: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    torch.manual_seed(0)
    ref = AuthorsGenerator(conv_dim=64, repeat_num=1)
    if a.checkpoint:
        from usgan.errors import WeightsError
        from usgan.weights import resolve

        try:
            path = resolve(a.checkpoint).path
        except WeightsError as e:
            raise SystemExit(f"error: {e}") from None
        ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        for m in ref.modules():  # non-default IN weights, so a path that mishandled them would show a difference
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    ref.train()                   # the authors never call .eval()
    G = Generator(c_dim=7, conv_dim=64, res_blocks=1, ultimate_skip=True).eval()
    G.load_state_dict(ref.state_dict())
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x7, c7 = x.expand(7, -1, -1, -1).contiguous(), torch.eye(7)

    print(f"[bench] {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
          f"threads, bf16 native: {bf16_supported(torch.device('cpu'))}")
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        baseline = lambda: authors_all_expressions(ref, x)[:, 0]  # noqa: E731
        ref_out = baseline()
        paths, setup = build_paths(G, x7, c7, skip, Path(tmp))
        runs = {"authors_eager_fp32_loop": baseline, **paths}
        for fn in runs.values():
            for _ in range(a.warmup):
                fn()
        times = {k: [] for k in runs}
        for _ in range(a.repeats):
            for k, fn in runs.items():      # round-robin: background load affects every path alike
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        diffs = {}
        for k, fn in paths.items():
            out = fn().float()
            diffs[k] = {"max_abs_diff": float((out - ref_out).abs().max()),
                        "max_8bit_levels": int((to_uint8(out).float() - to_uint8(ref_out).float()).abs().max())}
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["authors_eager_fp32_loop"]
    best = min(paths, key=med.get)
    best_fp32 = min((k for k in paths if "bf16" not in k), key=med.get)
    print(f"{'path':32s} {'median ms':>10s} {'speed-up':>9s} {'max |diff|':>11s} {'8-bit lvls':>10s} {'setup s':>8s}")
    for k in runs:
        d = diffs.get(k, {"max_abs_diff": 0.0, "max_8bit_levels": 0})
        print(f"{k:32s} {med[k] * 1e3:10.1f} {base / med[k]:8.2f}x {d['max_abs_diff']:11.2e} {d['max_8bit_levels']:10d} "
              f"{setup.get(k, 0.0):8.1f}")
    print(f"[bench] fastest: {best}, {base / med[best]:.2f}x the authors' eager fp32 loop, max abs diff "
          f"{diffs[best]['max_abs_diff']:.3g} ({diffs[best]['max_8bit_levels']} 8-bit levels); fastest fp32: "
          f"{best_fp32}, {base / med[best_fp32]:.2f}x, max abs diff {diffs[best_fp32]['max_abs_diff']:.3g}")
    import onnxruntime
    print(json.dumps({
        "benchmark": "inference_speed", "task": "7 expressions of one 128px face, US-GAN generator",
        "baseline_ms": round(base * 1e3, 2), "fastest_path": best, "fastest_ms": round(med[best] * 1e3, 2),
        "speedup": round(base / med[best], 2), "max_abs_diff": diffs[best]["max_abs_diff"],
        "max_8bit_levels": diffs[best]["max_8bit_levels"], "fastest_fp32_path": best_fp32,
        "fastest_fp32_speedup": round(base / med[best_fp32], 2),
        "fastest_fp32_max_abs_diff": diffs[best_fp32]["max_abs_diff"],
        "median_ms": {k: round(v * 1e3, 2) for k, v in med.items()},
        "setup_s": {k: round(v, 1) for k, v in setup.items()}, "repeats": a.repeats, "goal_speedup": 3.0,
        "machine": describe(bf16_native=bf16_supported(torch.device("cpu")), onnxruntime=onnxruntime.__version__),
    }))


if __name__ == "__main__":
    main()
