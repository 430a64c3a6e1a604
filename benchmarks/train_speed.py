"""Training speed: our iteration against a re-creation of the authors' loop, in one run on one machine.

    python benchmarks/train_speed.py                          # US-GAN and StarGAN, 128 px, batch 16
    python benchmarks/train_speed.py --iters 1 --warmup 1     # quick (about 2-3 minutes on 2 idle cores)
    python benchmarks/train_speed.py --ablation               # also each switch on its own
    python benchmarks/train_speed.py --curves-only            # bf16 vs fp32 loss curves against seed noise

The authors' loop (StarGAN's solver, which US-GAN's code keeps): stock nn.InstanceNorm2d generator and the
StarGAN critic, fp32, eager, contiguous tensors; every iteration one D step with the gradient penalty, where
G(x, c') is computed with grad (then detached) and D is called separately on x, on the fake and on x_hat;
every n_critic-th iteration a G step that computes G(x, c') again; both optimizers' gradients zeroed before
each backward. Targets are a permutation of the batch's labels. Ours is usgan.step.Engine with the switches
of SpeedConfig (each path's switches are printed). Both sides get the same pre-made batches; the data path
(FaceData.batches) is timed on its own against the step.

Timing: a round runs, for every path in a rotating order, one D-only iteration and one iteration with a G
step (so load from other processes hits all paths alike); the medians of each give the time of a schedule
of n_critic iterations: ((n_critic - 1) * t_D + t_DG) / n_critic per iteration. Also printed: the machine's
bf16/fp32 matmul peak measured in this run, each path's FLOPs per iteration (FlopCounterMode's formulas, counted at a
small batch and scaled, since every op is linear in the batch) and its share of that peak, and peak heap
(glibc mallinfo2, sampled) during its timed iterations. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import resource
import statistics
import sys
import threading
import time

import torch
from machine import cpu_flags, describe, matmul_peak
from speed_variants import (ABLATION_PATHS, DEFAULT_PATHS, FAST, PATHS, PLAIN, arch_config, batch_of,
                            flops_per_iteration, make_loop, precision)

from usgan.config import SpeedConfig, preset
from usgan.step import Engine, bf16_supported


# ------------------------------------------------------------------------------------------------ measuring
class HeapPeak:
    """Peak bytes in use by malloc (glibc mallinfo2: arenas + mmapped blocks) above the level at start."""

    def __init__(self, every_s=0.005):
        self.every_s, self.peak, self._stop = every_s, 0, threading.Event()
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallinfo2.restype = type("MallInfo2", (ctypes.Structure,),
                                          {"_fields_": [(n, ctypes.c_size_t) for n in (
                                              "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                              "fsmblks", "uordblks", "fordblks", "keepcost")]})
            self._info = libc.mallinfo2
        except (OSError, AttributeError):
            self._info = None

    def _used(self) -> int:
        m = self._info()
        return m.uordblks + m.hblkhd

    def __enter__(self):
        if self._info is not None:
            self.base = self.peak = self._used()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self._used())

    def __exit__(self, *exc):
        if self._info is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._used())

    @property
    def mib(self) -> float | None:
        return None if self._info is None else (self.peak - self.base) / 2 ** 20


def time_data_path(size: int, batch: int, n=40) -> float:
    """Seconds per batch of FaceData.batches from an in-memory uint8 set (indexing, scaling, flips)."""
    from usgan.data import FaceData
    N = 512
    data = FaceData(torch.randint(0, 256, (N, 3, size, size), dtype=torch.uint8), torch.randint(0, 7, (N,)), [],
                    torch.arange(N), torch.arange(0))
    it = data.batches("train", batch, seed=0)
    next(it)
    t = time.perf_counter()
    for _ in range(n):
        next(it)
    return (time.perf_counter() - t) / n


def bench_arch(arch: str, args, paths: list[str], n_critic: int) -> dict:
    cfg = arch_config(arch, args.size, args.batch)
    loops = {}
    for name in paths:
        torch.manual_seed(0)
        t = time.perf_counter()
        loops[name] = make_loop(name, cfg)
        loops[name]._setup_s = time.perf_counter() - t
    batches = [batch_of(args.size, args.batch, seed=s) for s in range(4)]
    times = {name: {"D": [], "DG": []} for name in paths}
    heap = {name: 0.0 for name in paths}
    order = list(paths)
    for r in range(args.warmup + args.iters):
        warm = r < args.warmup
        for name in order:
            loop = loops[name]
            with HeapPeak() as hp:
                for kind, i in (("D", 0), ("DG", n_critic - 1)):
                    x, y = batches[(r * 2 + (kind == "DG")) % len(batches)]
                    t = time.perf_counter()
                    loop.step(x, y, i)
                    dt = time.perf_counter() - t
                    if not warm:
                        times[name][kind].append(dt)
            if not warm and hp.mib is not None:
                heap[name] = max(heap[name], hp.mib)
            if warm and r == 0:
                print(f"  [{arch}] {name}: first D+G iterations done (includes setup/compile)", flush=True)
        order = order[1:] + order[:1]     # rotate, so no path always runs right after another
    out = {}
    for name in paths:
        t_d, t_dg = statistics.median(times[name]["D"]), statistics.median(times[name]["DG"])
        per_iter = ((n_critic - 1) * t_d + t_dg) / n_critic
        out[name] = {"images_per_s": args.batch / per_iter, "s_per_iter": per_iter, "t_d_only_s": t_d,
                     "t_with_g_s": t_dg, "precision": precision(name), "peak_heap_mib": round(heap[name], 1),
                     "switches": PATHS[name] or "authors' loop (fp32 eager)",
                     "runs": len(times[name]["D"])}
    return out


# ------------------------------------------------------------------------------------------------ loss curves
def loss_curves(iters: int, smooth: int, seeds: int = 3) -> dict:
    """A small config trained with `seeds` seeds in fp32 and the same seeds in bf16 (G and D), same switches otherwise.

    A GAN's loss curve is chaotic: a different rounding is as good as a different seed, so bf16 seed s does not
    track fp32 seed s. The question is whether bf16 training follows the same *distribution* of curves, so this
    compares the two seed-means, term by term and point by point, against the standard error of their difference
    (from the seed-to-seed spread within each precision). ratio = mean |bf16 mean - fp32 mean| / mean standard
    error; two groups of the same precision give about 0.8 in expectation (E|Z| for a standard normal), and a
    ratio <= 2 is counted as within noise.
    """
    from usgan.data import load_data
    base = preset("demo")
    base.model.g_conv_dim = base.model.d_conv_dim = 16
    base.optim.num_iters, base.optim.num_iters_decay = iters, 0
    data = load_data(base.data, base.model.image_size, progress=False)
    runs = {"fp32": [], "bf16": []}
    for bf16 in (False, True):
        label = "bf16" if bf16 else "fp32"
        for seed in range(seeds):
            cfg = dataclasses.replace(base, speed=SpeedConfig(**{**PLAIN, **FAST, "bf16": bf16, "bf16_d": bf16}))
            torch.manual_seed(seed)
            e = Engine.build(cfg)
            batches = data.batches("train", cfg.optim.batch_size, seed=seed)
            hist = {}
            t = time.perf_counter()
            for _ in range(iters):
                for k, v in e.train_step(*next(batches)).items():
                    if k != "lr":
                        hist.setdefault(k, []).append(v)
            runs[label].append(hist)
            print(f"  curves: {label} seed {seed}: {iters} iterations in {time.perf_counter() - t:.0f} s", flush=True)

    def smoothed(v):
        v = torch.tensor(v, dtype=torch.float64)
        k = min(smooth, len(v))
        return v.unfold(0, k, 1).mean(1)     # moving average over k iterations (k/n_critic G points for G terms)

    terms = {}
    for k in runs["fp32"][0]:
        a = torch.stack([smoothed(r[k]) for r in runs["fp32"]])      # seeds x points
        b = torch.stack([smoothed(r[k]) for r in runs["bf16"]])
        pooled_var = (a.var(0) + b.var(0)) / 2
        se = (pooled_var * 2 / seeds).sqrt()
        diff = (b.mean(0) - a.mean(0)).abs()
        terms[k] = {"bf16_minus_fp32": float(diff.mean()), "standard_error": float(se.mean()),
                    "ratio": float(diff.mean() / se.mean()) if float(se.mean()) else None,
                    "fp32_last": float(a[:, -1].mean()), "bf16_last": float(b[:, -1].mean())}
    ratios = [t["ratio"] for t in terms.values() if t["ratio"] is not None]
    return {"config": "demo preset, 64 px, conv_dim 16, batch 16, synthetic faces", "iters": iters, "seeds": seeds,
            "smooth_window": smooth, "terms": terms, "max_ratio": max(ratios),
            "median_ratio": statistics.median(ratios), "within_noise": all(r <= 2.0 for r in ratios)}


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=5, help="timed rounds: each is one D-only and one D+G iteration "
                                                         "per path (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--configs", default="usgan,stargan", help="usgan, stargan or both")
    ap.add_argument("--paths", help=f"comma list of {', '.join(PATHS)} (default: {', '.join(DEFAULT_PATHS)})")
    ap.add_argument("--ablation", action="store_true", help=f"add {', '.join(ABLATION_PATHS)}")
    ap.add_argument("--curves", action="store_true", help="also the bf16 vs fp32 loss-curve comparison")
    ap.add_argument("--curves-only", action="store_true", help="only the loss-curve comparison")
    ap.add_argument("--curve-iters", type=int, default=300)
    ap.add_argument("--curve-smooth", type=int, default=50)
    ap.add_argument("--curve-seeds", type=int, default=3, help="seeds per precision (default 3)")
    args = ap.parse_args(argv)

    threads = torch.get_num_threads()
    bf16_ok = bf16_supported(torch.device("cpu"))
    machine = describe(flags=cpu_flags(), bf16_native=bf16_ok, gpu="none lent to this run"
                       if not torch.cuda.is_available() else torch.cuda.get_device_name(0))
    load_start = os.getloadavg()
    print(f"machine: {machine['cpu']}, {machine['cpu_count']} cores, torch {torch.__version__} ({threads} threads), "
          f"flags {' '.join(machine['flags']) or '-'}, native bf16: {bf16_ok}; load average {load_start[0]:.2f}")
    result = {"machine": machine}
    ours_head = None
    if not args.curves_only:
        peak = {"fp32_gflops": matmul_peak(torch.float32), "bf16_gflops": matmul_peak(torch.bfloat16)}
        print(f"matmul peak (2048^2, best of 5): fp32 {peak['fp32_gflops']:.0f} GFLOP/s, "
              f"bf16 {peak['bf16_gflops']:.0f} GFLOP/s")
        paths = args.paths.split(",") if args.paths else list(DEFAULT_PATHS) + (ABLATION_PATHS if args.ablation else [])
        if not bf16_ok:
            skipped = [p for p in paths if PATHS[p] and PATHS[p].get("bf16")]
            paths = [p for p in paths if p not in skipped]
            if skipped:
                print(f"no native bf16 on this CPU: skipping {', '.join(skipped)}")
        if "authors" not in paths:
            paths.insert(0, "authors")
        t_data = time_data_path(args.size, args.batch)
        result.update(peak=peak, size=args.size, batch=args.batch, n_critic=5, data_path_s_per_batch=t_data,
                      configs={})
        print(f"data path: FaceData.batches {t_data * 1e3:.1f} ms per batch of {args.batch} at {args.size} px")
        for arch in args.configs.split(","):
            cfg = arch_config(arch, args.size, args.batch)
            n_critic = cfg.optim.n_critic
            print(f"\n== {arch}: {args.size} px, batch {args.batch}, n_critic {n_critic}; "
                  f"{args.warmup} warm-up + {args.iters} timed rounds per path")
            res = bench_arch(arch, args, paths, n_critic)
            for name in paths:
                res[name]["gflop_per_iter"] = flops_per_iteration(name, cfg, n_critic) / 1e9
                gfs = res[name]["gflop_per_iter"] / res[name]["s_per_iter"]
                pk = peak["bf16_gflops"] if "bf16" in res[name]["precision"] else peak["fp32_gflops"]
                res[name].update(achieved_gflops=gfs, share_of_peak=gfs / pk,
                                 data_share_of_step=t_data / res[name]["s_per_iter"])
            base = res["authors"]["images_per_s"]
            print(f"{'path':22s} {'img/s':>7s} {'ratio':>6s} {'t_D s':>7s} {'t_D+G s':>8s} {'GFLOP/it':>9s} "
                  f"{'GFLOP/s':>8s} {'%peak':>6s} {'heap MiB':>9s}  precision")
            for name in paths:
                r = res[name]
                r["ratio"] = r["images_per_s"] / base
                print(f"{name:22s} {r['images_per_s']:7.2f} {r['ratio']:6.2f} {r['t_d_only_s']:7.2f} "
                      f"{r['t_with_g_s']:8.2f} {r['gflop_per_iter']:9.1f} {r['achieved_gflops']:8.1f} "
                      f"{100 * r['share_of_peak']:5.1f}% {r['peak_heap_mib']:9.0f}  {r['precision']}")
            best = max((n for n in paths if n != "authors"), key=lambda n: res[n]["images_per_s"])
            print(f"fastest: {best} ({res[best]['ratio']:.2f}x the authors' loop); data path "
                  f"{100 * res[best]['data_share_of_step']:.2f}% of its step")
            result["configs"][arch] = {"paths": res, "best": best}
            if ours_head is None:
                ours_head = (arch, best, res[best], res["authors"])
    if args.curves or args.curves_only:
        print(f"\n== loss curves: bf16 vs fp32, {args.curve_iters} iterations, moving average {args.curve_smooth}")
        cur = loss_curves(args.curve_iters, args.curve_smooth, args.curve_seeds)
        for k, t in cur["terms"].items():
            print(f"  {k:12s} |bf16 - fp32| (seed means) {t['bf16_minus_fp32']:.4f}   standard error "
                  f"{t['standard_error']:.4f}   ratio {t['ratio']:.2f}   last: fp32 {t['fp32_last']:.3f} "
                  f"bf16 {t['bf16_last']:.3f}")
        print(f"  max ratio {cur['max_ratio']:.2f}, median {cur['median_ratio']:.2f}: "
              f"{'no drift beyond seed noise' if cur['within_noise'] else 'some term drifts more than seed noise'}")
        result["loss_curves"] = cur
    load_end = os.getloadavg()
    result["load_average"] = {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in load_end]}
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nload average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} (2-core machines: > 2 means "
          f"other work shared the cores); process max RSS {result['max_rss_mib']:.0f} MiB")
    head = {}
    if ours_head:
        arch, best, ours, authors = ours_head
        head = {"ours_images_per_s": round(ours["images_per_s"], 3),
                "authors_images_per_s": round(authors["images_per_s"], 3),
                "ratio": round(ours["ratio"], 3), "precision": ours["precision"], "config": arch, "path": best}
        for a, c in result["configs"].items():
            head[f"{a}_images_per_s"] = {n: round(r["images_per_s"], 3) for n, r in c["paths"].items()}
    print(json.dumps({**head, **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
