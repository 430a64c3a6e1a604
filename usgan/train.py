"""Train US-GAN with Ray Train: DDP across GPU nodes, CPU workers where there is no GPU.

    python -m usgan.train                                   # demo preset, synthetic faces, local Ray
    ray job submit --working-dir . -- python -m usgan.train --preset paper \
        --data kdef:/data/KDEF --data rafd:/data/RaFD --data cfee:/data/CFEE
    python -m usgan.train --config my.yaml --set loss.lambda_rec=10 --iters 5000
    python -m usgan.train --print-config                    # the resolved settings, as YAML

Re-running with the same --name and --storage resumes from the last checkpoint. The pure-PyTorch
iteration lives in step.py; this file only places it on Ray workers, feeds data and writes results.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .config import ConfigError, apply_overrides, load, preset, set_value, validate

FAIL_ONCE_ENV = "USGAN_FAIL_ONCE_AT_ITER"   # "N:marker-file": a worker crashes once at iteration N (fault tests)


# ------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m usgan.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help="demo (default), paper, stargan, tiny")
    ap.add_argument("--config", help="YAML file (sections model, loss, optim, data, speed, run)")
    ap.add_argument("--data", action="append", metavar="KIND:PATH",
                    help="kdef:DIR, rafd:DIR, cfee:DIR, folder:DIR, manifest:CSV or synthetic; repeat to combine")
    ap.add_argument("--iters", type=int, help="total iterations (optim.num_iters)")
    ap.add_argument("--decay-iters", type=int, help="iterations of linear lr decay at the end")
    ap.add_argument("--batch-size", type=int, help="per-worker batch size")
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


def config_from_args(a):
    cfg = load(a.config) if a.config else preset(a.preset or "demo")
    if a.config and a.preset:
        raise ConfigError("give either --preset or --config (a config file names its preset inside)")
    direct = {"data.sources": a.data, "optim.num_iters": a.iters, "optim.num_iters_decay": a.decay_iters,
              "optim.batch_size": a.batch_size, "loss.lambda_cls": a.lambda_cls, "loss.lambda_rec": a.lambda_rec,
              "loss.lambda_gp": a.lambda_gp, "run.num_workers": a.num_workers,
              "run.gpus_per_worker": a.gpus_per_worker, "run.cpus_per_worker": a.cpus_per_worker,
              "run.name": a.name, "run.storage": a.storage}
    for key, value in direct.items():
        if value is not None:
            set_value(cfg, key, value)
    if a.iters is not None and a.decay_iters is None:
        cfg.optim.num_iters_decay = min(cfg.optim.num_iters_decay, cfg.optim.num_iters // 2)
    return validate(apply_overrides(cfg, a.set))


def resolve_storage(storage: str) -> str:
    """Ray wants an absolute path or a URI."""
    if "://" in storage:
        return storage
    return str(Path(storage).expanduser().resolve())


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
    data = ray.get(config["data_ref"])[0]   # every node gets the decoded images from the object store
    validator = ray.get(config["validator_ref"][0]) if config.get("validator_ref") and cfg.run.validate_every else None

    torch.manual_seed(cfg.run.seed)           # identical initial weights on every rank
    engine = Engine.build(cfg, device)
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            blob = torch.load(Path(d) / ENGINE_FILE, map_location=device, weights_only=False)
        engine.load_state_dict(blob)
        if rank == 0:
            print(f"[train] resumed from iteration {engine.iteration}", flush=True)
    start = engine.iteration
    # Per-rank stream, reseeded on resume so a restarted run does not replay the same targets.
    torch.manual_seed(cfg.run.seed * 100_003 + rank * 7919 + start)

    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device.index] if device.type == "cuda" else None
        engine.wrap(lambda m: DDP(m, device_ids=ids))

    o, r = cfg.optim, cfg.run
    batches = data.batches("train", o.batch_size, seed=cfg.run.seed + start, rank=rank, world_size=world,
                           hflip=cfg.data.hflip)
    fixed = data.as_float(grid_faces(data))
    log = ProgressLog(config["run_dir"], o.num_iters, o.batch_size * world, start) if rank == 0 else None
    if log and start >= o.num_iters:
        log.note(f"run '{cfg.run.name}' already reached iteration {start} of {o.num_iters}: nothing to train. "
                 "Pass --name for a new run, or a larger --iters to continue this one.")
    elif log and start:
        log.note(f"resumed from iteration {start}")
    fail_at, _, marker = (config.get("fail_once") or "").partition(":")

    for it in range(start, o.num_iters):
        if fail_at and it == int(fail_at) and rank == world - 1 and not Path(marker).exists():
            Path(marker).write_text(f"crashed at iteration {it}\n")
            # Ray's controller collects reports by polling; give it the time a real crash after a checkpoint would.
            time.sleep(3)
            os._exit(1)   # a hard worker death, as a lost node would look to Ray
        x, y = next(batches)
        terms = engine.train_step(x, y)
        done = engine.iteration
        if log and (done % r.log_every == 0 or done == o.num_iters):
            log.write(done, terms)
        if rank == 0 and "://" not in config["run_dir"] and (done % r.sample_every == 0 or done == o.num_iters):
            save_sample_grid(engine, fixed, Path(config["run_dir"]) / "samples" / f"{done:06d}.png")
        want_val = validator is not None and (done % r.validate_every == 0 or done == o.num_iters)
        if want_val or done % r.checkpoint_every == 0 or done == o.num_iters:
            metrics = {"iteration": done, **terms, "rank_param_spread": rank_param_spread(engine, world)}
            if want_val and rank == 0:
                metrics.update(validator(engine.G, data))
                log.note(" ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val/")))
            if want_val and done % r.checkpoint_every and done != o.num_iters:
                ray.train.report(metrics, checkpoint=None)   # every rank reports; rank 0's metrics are kept
            elif rank == 0:
                with tempfile.TemporaryDirectory() as tmp:
                    save_checkpoint(tmp, engine, cfg)
                    save_sample_grid(engine, fixed, Path(tmp) / "samples.png")   # travels to s3:// storage too
                    ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
            else:
                ray.train.report(metrics, checkpoint=None)
    if log:
        log.close()


def rank_param_spread(engine, world: int) -> float:
    """Largest difference, across ranks, of any parameter tensor's sum: 0.0 while DDP keeps ranks in step."""
    import torch
    import torch.distributed as dist

    unwrap = lambda m: getattr(m, "module", m)  # noqa: E731
    sums = torch.stack([p.detach().double().sum().cpu() for m in (engine.G, engine.D) for p in unwrap(m).parameters()])
    if world == 1:
        return 0.0
    gathered = [torch.zeros_like(sums) for _ in range(world)]
    dist.all_gather(gathered, sums.to(next(unwrap(engine.G).parameters()).device) if dist.get_backend() == "nccl"
                    else sums)
    stacked = torch.stack([g.cpu() for g in gathered])
    return float((stacked.max(0).values - stacked.min(0).values).max())


# ------------------------------------------------------------------------------------------- launcher
def plan_resources(cfg, cluster: dict, node_cpus: list[float] | None = None) -> dict:
    """Workers, GPUs and CPUs per worker that fit the cluster; refuses what cannot work, before any worker."""
    gpus, cpus = int(cluster.get("GPU", 0)), float(cluster.get("CPU", 1))
    node_cpus = node_cpus or [cpus]
    r = cfg.run
    if r.gpus_per_worker > 0 and gpus == 0:
        raise ConfigError(f"--gpus-per-worker {r.gpus_per_worker:g} asked for GPUs, but this Ray cluster has none "
                          f"({cpus:g} CPUs); drop the flag to train on CPU workers")
    if gpus > 0:
        gpw = r.gpus_per_worker or 1.0
        n = r.num_workers or int(gpus // gpw)          # every GPU of the cluster becomes a DDP worker
        if n * gpw > gpus:
            raise ConfigError(f"{n} workers x {gpw:g} GPU need {n * gpw:g} GPUs; the cluster has {gpus}: "
                              "lower --num-workers")
        cpw = r.cpus_per_worker or 1.0
        return {"num_workers": n, "use_gpu": True, "resources_per_worker": {"CPU": cpw, "GPU": gpw},
                "threads": max(1, int(cpw))}
    # CPU only: one worker per node owning that node's cores (DDP inside one machine's CPUs only adds copies).
    n = r.num_workers or len(node_cpus)
    cpw = r.cpus_per_worker or max(1.0, min(node_cpus) if n <= len(node_cpus) else cpus // n)
    if n * cpw > cpus:
        raise ConfigError(f"{n} workers x {cpw:g} CPUs need {n * cpw:g} CPUs; the cluster has {cpus:g}: "
                          "lower --num-workers or --cpus-per-worker (fractions are allowed)")
    return {"num_workers": n, "use_gpu": False, "resources_per_worker": {"CPU": cpw}, "threads": max(1, int(cpw))}


def data_tag(cfg, data) -> str:
    """Names what a classifier was trained on: the sources, the image size and the split."""
    import hashlib
    key = f"{sorted(cfg.data.sources)}|{cfg.model.image_size}|{cfg.data.split_seed}|{cfg.data.test_fraction}|{len(data.records)}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def prepare(cfg, skip_bad=False, quiet=False, split_dir=None) -> dict:
    """Read and decode the data on the driver (a bad path fails here, in one line, before Ray starts), then
    hand it, and the validator when validation is on, to Ray's object store for every worker on every node."""
    import ray

    from .data import load_data

    data = load_data(cfg.data, cfg.model.image_size, split_file=(Path(split_dir) / "split.json") if split_dir else None,
                     skip_bad=skip_bad, progress=not quiet)
    print(f"[data] {len(data.train_idx)} training / {len(data.test_idx)} test images "
          f"from {', '.join(cfg.data.sources)}", flush=True)
    validator = None
    if cfg.run.validate_every:
        from .metrics.validation import build_validator
        validator = build_validator(data, Path(cfg.data.cache_dir).expanduser(), data_tag(cfg, data), progress=not quiet)
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"))
    # Refs travel inside lists so Ray hands them over as refs instead of resolving them at the call.
    return {"data_ref": [ray.put(data)], "validator_ref": [ray.put(validator)] if validator else None}


def run(cfg, skip_bad=False, quiet=False, callbacks=None, prepared=None):
    """Train on Ray with `cfg`; returns (result, run_dir). The resolved config is saved beside the results."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    storage = resolve_storage(cfg.run.storage)
    run_dir = f"{storage.rstrip('/')}/{cfg.run.name}"
    local = "://" not in run_dir
    if local:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        cfg.save(Path(run_dir) / "config.yaml")
    prepared = prepared or prepare(cfg, skip_bad, quiet, split_dir=run_dir if local else None)
    node_cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU")]
    plan = plan_resources(cfg, ray.cluster_resources(), node_cpus)
    print(f"[ray] {plan['num_workers']} worker(s), {'GPU' if plan['use_gpu'] else 'CPU'}, "
          f"{plan['resources_per_worker']} each", flush=True)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.to_dict(), **prepared, "run_dir": run_dir, "threads": plan["threads"],
                           "fail_once": os.environ.get(FAIL_ONCE_ENV, "")},
        scaling_config=ray.train.ScalingConfig(num_workers=plan["num_workers"], use_gpu=plan["use_gpu"],
                                               resources_per_worker=plan["resources_per_worker"]),
        run_config=ray.train.RunConfig(
            name=cfg.run.name, storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or []),
    )
    return trainer.fit(), run_dir


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(a)
        if a.print_config:
            import yaml
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        print(f"[usgan] preset {cfg.preset}: {cfg.optim.num_iters} iterations, batch {cfg.optim.batch_size}, "
              f"{cfg.model.image_size}px, lambdas cls/rec/gp {cfg.loss.lambda_cls}/{cfg.loss.lambda_rec}/"
              f"{cfg.loss.lambda_gp}, data {', '.join(cfg.data.sources)}", flush=True)
        t0 = time.time()
        result, run_dir = run(cfg, skip_bad=a.skip_bad)
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
