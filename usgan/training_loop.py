"""The loop every Ray Train worker runs: start (or resume) the engine, wrap it in DDP, iterate, log, sample,
validate and report checkpoints. launch.run_training starts it; step.py holds the iteration itself.
"""
from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path

import ray
import ray.train
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from ray.train import Checkpoint
from ray.train.torch import get_device

from .checkpoints import ENGINE_FILE, save_checkpoint
from .config import from_dict
from .run_outputs import ProgressLog, grid_faces, save_sample_grid
from .step import start_run, warmup_at_chance
from .translate import unwrap


def train_loop_per_worker(config: dict) -> None:
    """Runs on every Ray Train worker: build, maybe resume, wrap in DDP, iterate, report checkpoints."""
    cfg = from_dict(config["cfg"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    device = get_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # fixed input sizes, as the authors' driver.py sets it
    data = ray.get(config["data_ref"])[0]   # every node gets the decoded images from the object store
    validator = ray.get(config["validator_ref"][0]) if config.get("validator_ref") and cfg.run.validate_every else None

    state = None
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / ENGINE_FILE, map_location=device, weights_only=True)
    o, r = cfg.optim, cfg.run
    # optim.batch_size is the global batch, as on the authors' one GPU; each worker takes its share.
    per_worker = config.get("batch_per_worker") or o.batch_size // world
    engine, batches = start_run(cfg, data, device, per_worker, rank, world, state)
    start = engine.iteration
    if start and rank == 0:
        print(f"[train] resumed from iteration {start}", flush=True)

    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        engine.wrap(lambda m: DDP(m, device_ids=ids))
        engine.shard = (rank, world)

    fixed = data.as_float(grid_faces(data))
    log = ProgressLog(config["run_dir"], o.num_iters, per_worker * world, start) if rank == 0 else None
    if log and start >= o.num_iters:
        log.note(f"run '{cfg.run.name}' already reached iteration {start} of {o.num_iters}: nothing to train. "
                 "Pass --name for a new run, or a larger --iters to continue this one.")
    elif log and start:
        log.note(f"resumed from iteration {start}")
    before_step = config.get("before_step")
    warmup_losses = deque(maxlen=100)   # D/loss_cls of the classifier warm-up's last iterations, checked as it ends

    for it in range(start, o.num_iters):
        if before_step:
            before_step(it, rank, world)
        x, y = next(batches)
        terms = engine.train_step(x, y)
        done = engine.iteration
        if log and done <= o.cls_warmup:
            warmup_losses.append(terms["D/loss_cls"])
            if done == o.cls_warmup and (warning := warmup_at_chance(warmup_losses, cfg.model.c_dim,
                                                                     cfg.model.d_init_scale)):
                log.note(warning)
        if log and due(done, r.log_every, o.num_iters):
            log.write(done, terms)
        if rank == 0 and "://" not in config["run_dir"] and due(done, r.sample_every, o.num_iters):
            save_sample_grid(engine, fixed, Path(config["run_dir"]) / "samples" / f"{done:06d}.png")
        validate_now = validator is not None and due(done, r.validate_every, o.num_iters)
        checkpoint_now = due(done, r.checkpoint_every, o.num_iters)
        if not (validate_now or checkpoint_now):
            continue
        # Every rank reports (Ray Train waits for all); rank 0's metrics and checkpoint are the ones kept.
        metrics = {"iteration": done, **terms, "rank_param_spread": rank_param_spread(engine, world),
                   "global_batch": ranks_sum(len(x), engine)}
        if validate_now and rank == 0:
            metrics.update(validator(engine.G_eval, data))
            log.note(" ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val/")))
        if checkpoint_now and rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, engine, cfg)
                save_sample_grid(engine, fixed, Path(tmp) / "samples.png")   # travels to s3:// storage too
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics, checkpoint=None)
    if log:
        log.close()


def due(done: int, every: int, last: int) -> bool:
    """A periodic task (log, sample, validate, checkpoint) runs every `every` iterations and after the last."""
    return done % every == 0 or done == last


def ranks_sum(value: int, engine) -> int:
    """value summed over the ranks (the images one step took on all workers together)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], device=engine.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return int(t.item())


def rank_param_spread(engine, world: int) -> float:
    """Largest difference, across ranks, of any parameter tensor's sum: 0.0 while DDP keeps ranks in step."""
    sums = torch.stack([p.detach().double().sum().cpu() for m in (engine.G, engine.D) for p in unwrap(m).parameters()])
    if world == 1:
        return 0.0
    gathered = [torch.zeros_like(sums) for _ in range(world)]
    dist.all_gather(gathered, sums.to(next(unwrap(engine.G).parameters()).device) if dist.get_backend() == "nccl"
                    else sums)
    stacked = torch.stack([g.cpu() for g in gathered])
    return float((stacked.max(0).values - stacked.min(0).values).max())
