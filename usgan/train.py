"""Train US-GAN with Ray Train: DDP across GPU nodes, CPU workers where there is no GPU.

    python -m usgan.train                                   # demo preset, synthetic faces, local Ray
    ray job submit --working-dir . -- python -m usgan.train --preset paper \
        --data kdef:/data/KDEF --data rafd:/data/RaFD --data cfee:/data/CFEE
    python -m usgan.train --config my.yaml --set loss.lambda_rec=10 --iters 5000
    python -m usgan.train --print-config                    # the resolved settings, as YAML

Re-running with the same --name and --storage resumes from the last checkpoint. The pure-PyTorch
iteration lives in step.py, the Ray-side setup in launch.py; this file is the CLI and the loop every worker runs.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .config import ConfigError, validate
from .launch import config_from_cli, run_training


# ------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m usgan.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help="demo (default), demo-paper, paper, stargan, tiny")
    ap.add_argument("--config", help="YAML file (sections model, loss, optim, data, speed, run)")
    ap.add_argument("--data", action="append", metavar="KIND:PATH",
                    help="kdef:DIR, rafd:DIR, cfee:DIR, folder:DIR, manifest:CSV or synthetic; repeat to combine")
    ap.add_argument("--iters", type=int, help="total iterations (optim.num_iters)")
    ap.add_argument("--decay-iters", type=int, help="iterations at the end over which the lr schedule "
                    "(optim.lr_schedule) decays")
    ap.add_argument("--batch-size", type=int, help="global batch size, split evenly over the workers")
    ap.add_argument("--lambda-cls", type=float)
    ap.add_argument("--lambda-rec", type=float)
    ap.add_argument("--lambda-gp", type=float)
    ap.add_argument("--num-workers", type=int, help="DDP workers (default: all GPUs, else CPU workers)")
    ap.add_argument("--gpus-per-worker", type=float)
    ap.add_argument("--cpus-per-worker", type=float)
    ap.add_argument("--name", help="run name; the same name resumes")
    ap.add_argument("--storage", help="where runs live: a local dir, an NFS mount or s3://bucket/prefix")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any other setting")
    ap.add_argument("--skip-bad", action="store_true", help="leave out unreadable or misnamed images instead of failing")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return ap


# ------------------------------------------------------------------------------------ the worker's loop
def train_loop_per_worker(config: dict) -> None:
    """Runs on every Ray Train worker: build, maybe resume, wrap in DDP, iterate, report checkpoints."""
    import ray
    import ray.train
    import torch
    from ray.train import Checkpoint
    from ray.train.torch import get_device

    from .checkpoints import ENGINE_FILE, save_checkpoint
    from .config import from_dict
    from .run_outputs import ProgressLog, grid_faces, save_sample_grid
    from .step import Engine

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

    torch.manual_seed(cfg.run.seed)           # identical initial weights on every rank
    engine = Engine.build(cfg, device)
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            blob = torch.load(Path(d) / ENGINE_FILE, map_location=device, weights_only=True)
        engine.load_state_dict(blob)
        if rank == 0:
            print(f"[train] resumed from iteration {engine.iteration}", flush=True)
    start = engine.iteration
    engine.seed_stream(cfg.run.seed, rank)

    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device.index] if device.type == "cuda" else None
        engine.wrap(lambda m: DDP(m, device_ids=ids))
        engine.shard = (rank, world)

    o, r = cfg.optim, cfg.run
    # optim.batch_size is the global batch, as on the authors' one GPU; each worker takes its share.
    per_worker = config.get("batch_per_worker") or o.batch_size // world
    batches = data.batches("train", per_worker, seed=cfg.run.seed + start, rank=rank, world_size=world,
                           hflip=cfg.data.hflip)
    fixed = data.as_float(grid_faces(data))
    log = ProgressLog(config["run_dir"], o.num_iters, per_worker * world, start) if rank == 0 else None
    if log and start >= o.num_iters:
        log.note(f"run '{cfg.run.name}' already reached iteration {start} of {o.num_iters}: nothing to train. "
                 "Pass --name for a new run, or a larger --iters to continue this one.")
    elif log and start:
        log.note(f"resumed from iteration {start}")
    before_step = config.get("before_step")

    for it in range(start, o.num_iters):
        if before_step:
            before_step(it, rank, world)
        x, y = next(batches)
        terms = engine.train_step(x, y)
        done = engine.iteration
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
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], device=engine.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return int(t.item())


def rank_param_spread(engine, world: int) -> float:
    """Largest difference, across ranks, of any parameter tensor's sum: 0.0 while DDP keeps ranks in step."""
    import torch
    import torch.distributed as dist

    from .translate import unwrap

    sums = torch.stack([p.detach().double().sum().cpu() for m in (engine.G, engine.D) for p in unwrap(m).parameters()])
    if world == 1:
        return 0.0
    gathered = [torch.zeros_like(sums) for _ in range(world)]
    dist.all_gather(gathered, sums.to(next(unwrap(engine.G).parameters()).device) if dist.get_backend() == "nccl"
                    else sums)
    stacked = torch.stack([g.cpu() for g in gathered])
    return float((stacked.max(0).values - stacked.min(0).values).max())


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        cfg = validate(config_from_cli(a))
        if a.print_config:
            import yaml
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        o = cfg.optim
        print(f"[usgan] preset {cfg.preset}: {o.num_iters} iterations, global batch {o.batch_size}, "
              f"lr {o.g_lr:g}/{o.d_lr:g} ({o.lr_schedule} schedule), {cfg.model.image_size}px, lambdas cls/rec/gp "
              f"{cfg.loss.lambda_cls}/{cfg.loss.lambda_rec}/{cfg.loss.lambda_gp}, data {', '.join(cfg.data.sources)}",
              flush=True)
        t0 = time.time()
        result, run_dir = run_training(cfg, skip_bad=a.skip_bad)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.error:
        print(f"error: training failed: {result.error}", file=sys.stderr)
        return 1
    ckpt = result.checkpoint.path if result.checkpoint else "(none)"
    print(f"\n[usgan] done in {time.time() - t0:.0f} s")
    print(f"  checkpoint : {ckpt}  (engine.pt + authors' {{iter}}-G.ckpt / -D.ckpt)")
    print(f"  samples    : {run_dir}/samples/  (rows: a held-out face per expression; columns: input + 7)")
    print(f"  logs       : {run_dir}/progress.log, TensorBoard: tensorboard --logdir {run_dir}/tensorboard")
    print(f"  config     : {run_dir}/config.yaml, split: {run_dir}/split.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
