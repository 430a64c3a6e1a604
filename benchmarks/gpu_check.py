"""GPU check: the paper's run through Ray Train on every visible GPU, against the authors' loop, in a few minutes.

    python benchmarks/gpu_check.py                        # every visible GPU; about 4 minutes on one H100
    python benchmarks/gpu_check.py --minutes 5 --iters 500
    python benchmarks/gpu_check.py --device cpu --tiny    # the same code at a toy size on CPU (what CI can run)

Without a CUDA device (and without --device cpu) it prints {"skipped": ...} and exits 0.

1. One GPU, no Ray: training iterations of the `paper` preset (US-GAN, 128 px, lambdas 1/1/10, Adam 1e-4,
   n_critic 5, batch 8) on fixed batches, timed over whole n_critic schedules: the authors' loop
   (usgan.authors_reference.AuthorsLoop: their Solver.train body, eager fp32), ours in fp32 and ours under bf16
   autocast (with and without D's matmul layers, a CPU speed-up); img/s and peak GPU memory of each.
2. Inference: one face to all seven expressions, the authors' seven eager fp32 calls against our one batched call
   (fp32 and bf16); median latency.
3. Ray Train: `usgan.train`'s worker loop with the paper preset on every visible GPU (DDP over nccl), bf16,
   the global batch 8 split over the workers, on the synthetic faces (the licensed datasets are not needed to
   time it): img/s from rank 0's clock after a warm-up, peak GPU memory of rank 0, the workers' own report of
   the global batch and of their parameter spread (0.0: the ranks stayed identical).
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import describe

from usgan.authors_reference import AuthorsGenerator, AuthorsLoop, authors_all_expressions
from usgan.config import preset, validate
from usgan.step import Engine, build_networks
from usgan.translate import translate

PATHS = {  # name -> SpeedConfig switches over the paper preset's (None: the authors' loop)
    "authors_fp32": None,
    "ours_fp32": dict(bf16=False),
    "ours_bf16": dict(bf16=True, bf16_d=True),
    "ours_bf16_conv_d": dict(bf16=True, bf16_d=True, d_matmul=False),
}


def check_config(tiny: bool, workers: int):
    """The paper's run, or a toy one (--tiny); the global batch 8 grows to a multiple of the workers if it must."""
    cfg = preset("tiny" if tiny else "paper")
    if tiny:
        cfg.model.image_size, cfg.model.d_repeat_num = 32, 5
    cfg.data.sources, cfg.data.synthetic_identities = ["synthetic"], 12 if tiny else 40
    if cfg.optim.batch_size % workers:
        cfg.optim.batch_size *= workers
    cfg.optim.num_iters_decay = 0
    return cfg


class Clock:
    """usgan.launch's before_step hook: rank 0 notes the time at `start` and `stop`, and what it held then."""

    def __init__(self, start: int, stop: int, out: str):
        self.start, self.stop, self.out = start, stop, out

    def __call__(self, it: int, rank: int, world: int) -> None:
        if rank or it not in (self.start, self.stop):
            return
        import torch.distributed as dist
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.synchronize()
        path = Path(self.out)
        note = json.loads(path.read_text()) if path.exists() else {}
        note[str(it)] = time.perf_counter()
        if it == self.stop:
            note.update(backend=dist.get_backend() if dist.is_initialized() else "none (one worker)",
                        peak_gpu_mib=torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None,
                        device=torch.cuda.get_device_name() if cuda else "cpu")
        path.write_text(json.dumps(note))


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_mib(device):
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None


def fixed_batches(cfg, device, n=4):
    g = torch.Generator().manual_seed(0)
    s, b = cfg.model.image_size, cfg.optim.batch_size
    return [((torch.rand(b, 3, s, s, generator=g) * 2 - 1).to(device), torch.randint(0, 7, (b,), generator=g))
            for _ in range(n)]


def time_training(name: str, cfg, device, rounds: int, warmup_rounds: int) -> dict:
    """img/s of one path over whole n_critic schedules (D-only iterations and the one with a G step)."""
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if PATHS[name] is None:
        loop = AuthorsLoop(cfg, device)
        step = loop.step
    else:
        engine = Engine.build(dataclasses.replace(cfg, speed=dataclasses.replace(cfg.speed, **PATHS[name])), device)

        def step(x, y, i):
            engine.iteration = i
            return engine.train_step(x, y)
    batches, n_critic = fixed_batches(cfg, device), cfg.optim.n_critic
    for i in range(warmup_rounds * n_critic):
        step(*batches[i % len(batches)], i)
    sync(device)
    t = time.perf_counter()
    for i in range(rounds * n_critic):
        terms = step(*batches[i % len(batches)], i)
    sync(device)
    seconds = (time.perf_counter() - t) / (rounds * n_critic)
    return {"images_per_s": cfg.optim.batch_size / seconds, "s_per_iter": seconds, "peak_gpu_mib": peak_mib(device),
            "iterations_timed": rounds * n_critic, "last_losses": terms}


def time_inference(cfg, device, repeats: int) -> dict:
    """Median ms for one face in all seven expressions: the authors' seven calls, our one batch of seven."""
    m = cfg.model
    torch.manual_seed(0)
    theirs = AuthorsGenerator(m.g_conv_dim, m.c_dim, m.g_res_blocks, m.ultimate_skip).to(device)
    G = build_networks(cfg)[0].to(device)
    G.load_state_dict(theirs.state_dict())
    x = torch.rand(1, 3, m.image_size, m.image_size, device=device) * 2 - 1
    x7, labels = x.expand(7, -1, -1, -1).contiguous(), torch.arange(7)

    def bf16():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return translate(G, x7, labels)
    paths = {"authors_fp32_7_calls": lambda: authors_all_expressions(theirs, x),
             "ours_fp32_batched": lambda: translate(G, x7, labels), "ours_bf16_batched": bf16}
    times = {k: [] for k in paths}
    for r in range(repeats + 3):
        for name, fn in paths.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            if r >= 3:
                times[name].append((time.perf_counter() - t) * 1e3)
    gap = (paths["ours_fp32_batched"]().float().cpu() - paths["authors_fp32_7_calls"]()[:, 0].float().cpu()).abs()
    res = {k: round(statistics.median(v), 3) for k, v in times.items()}
    res["speedup_bf16"] = round(res["authors_fp32_7_calls"] / res["ours_bf16_batched"], 2)
    res["max_abs_diff_fp32_to_authors"] = float(gap.max())
    return {"median_ms": res, "repeats": repeats}


def ray_run(cfg, device, iters: int, warmup: int, tmp: Path) -> dict:
    """The paper preset through usgan.launch.run_training on every visible GPU (or two CPU workers with --tiny)."""
    import ray

    from usgan.launch import run_training
    workers = torch.cuda.device_count() if device.type == "cuda" else 2
    cfg = copy.deepcopy(cfg)
    cfg.optim.num_iters = iters
    cfg.speed.bf16 = device.type == "cuda"
    cfg.run.name, cfg.run.storage, cfg.run.num_workers = "gpu-check", str(tmp / "runs"), workers
    cfg.run.log_every = cfg.run.sample_every = cfg.run.checkpoint_every = iters
    cfg.run.max_failures = 0          # a check reports a crash; it does not retry it
    if device.type == "cuda":
        cfg.run.gpus_per_worker = 1.0
    else:
        cfg.run.cpus_per_worker = 1.0
    validate(cfg)
    clock = tmp / "clock.json"
    t = time.perf_counter()
    try:
        result, _ = run_training(cfg, quiet=True, before_step=Clock(warmup, iters - 1, str(clock)))
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t
    if result.error:
        return {"error": str(result.error).splitlines()[-1], "wall_s": round(wall, 1)}
    note, steps = json.loads(clock.read_text()), iters - 1 - warmup
    seconds = note[str(iters - 1)] - note[str(warmup)]
    m = result.metrics
    return {"workers": workers, "backend": note["backend"], "device": note["device"],
            "global_batch_configured": cfg.optim.batch_size, "global_batch_reported": m.get("global_batch"),
            "per_worker_batch": cfg.optim.batch_size // workers, "iterations": iters, "iterations_timed": steps,
            "images_per_s": steps * cfg.optim.batch_size / seconds, "s_per_iter": seconds / steps,
            "peak_gpu_mib_rank0": note["peak_gpu_mib"], "rank_param_spread": m.get("rank_param_spread"),
            "last_losses": {k: v for k, v in m.items() if k.startswith(("D/", "G/"))}, "wall_s": round(wall, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=7.0, help="time budget for the whole check (default 7)")
    ap.add_argument("--iters", type=int, default=300, help="Ray Train iterations, fewer if the budget asks (300)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a toy model and a few iterations (for --device cpu)")
    args = ap.parse_args(argv)
    t0, budget = time.perf_counter(), args.minutes * 60
    left = lambda: budget - (time.perf_counter() - t0)  # noqa: E731
    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device visible (torch.cuda.is_available() is False); run it on a GPU "
                                     "machine, or pass --device cpu --tiny to exercise the code path"}))
        return 0
    device = torch.device(args.device)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    cfg = check_config(args.tiny, max(gpus, 2 if device.type == "cpu" else 1))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True     # as the authors' driver.py sets it
    out = {"machine": describe(gpu=torch.cuda.get_device_name(0) if gpus else None, gpus=gpus,
                               cuda=torch.version.cuda), "device": args.device, "tiny": args.tiny,
           "config": {"preset": cfg.preset, "image_size": cfg.model.image_size, "batch": cfg.optim.batch_size,
                      "n_critic": cfg.optim.n_critic, "data": "synthetic faces"}}
    rounds, warmup = (2, 1) if args.tiny else (20, 4)
    print(f"[gpu-check] {args.device}: {gpus} GPU(s); {cfg.model.image_size} px, batch {cfg.optim.batch_size}; "
          f"budget {args.minutes:g} min", file=sys.stderr, flush=True)

    train = {}
    for name in PATHS:
        if PATHS[name] and PATHS[name].get("bf16") and device.type != "cuda":
            continue                                   # bf16 autocast is the GPU path; the CPU check skips it
        train[name] = time_training(name, cfg, device, rounds, warmup)
        print(f"[gpu-check] {name}: {train[name]['images_per_s']:.1f} img/s", file=sys.stderr, flush=True)
    base = train["authors_fp32"]["images_per_s"]
    out["train_one_device"] = train
    out["speedup_vs_authors"] = {k: round(v["images_per_s"] / base, 3) for k, v in train.items()}
    out["inference_7_expressions"] = time_inference(cfg, device, 5 if args.tiny else 50)

    fastest = min(v["s_per_iter"] for v in train.values())
    # Ray's start, the data and the checkpoint take about two minutes on one GPU; the rest trains, with margin.
    iters = min(args.iters, 20) if args.tiny else max(60, min(args.iters, int((left() - 120) / (2 * fastest))))
    warm = min(2 if args.tiny else 20, iters // 3)
    with tempfile.TemporaryDirectory() as tmp:
        cfg.data.cache_dir = str(Path(tmp) / "cache")
        try:
            out["ray_train"] = ray_run(cfg, device, iters, warm, Path(tmp))
        except Exception as e:  # a check reports what broke instead of dying without its JSON
            out["ray_train"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    if "images_per_s" in out["ray_train"]:
        out["ray_train"]["vs_authors_one_device"] = round(out["ray_train"]["images_per_s"] / base, 3)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["within_budget"] = out["seconds"] <= budget
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
