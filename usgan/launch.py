"""What train, tune and the benchmarks share on the Ray side: storage, ray.init, worker resources, the data in
the object store, and one Ray Train run of training_loop.py's worker loop.

    cfg = validate(config_from_cli(args))      # usgan.config
    result, run_dir = run_training(cfg)

Imports Ray, usgan's data and metrics, and the worker loop only when a run starts.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ConfigError

def resolve_storage(storage: str) -> str:
    """Ray wants an absolute path or a URI."""
    if "://" in storage:
        return storage
    return str(Path(storage).expanduser().resolve())


def init_ray() -> None:
    """Join the cluster RAY_ADDRESS names (ray job submit sets it), else start a local one."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"))


def node_cpus() -> list[float]:
    """CPUs of each live node that has any."""
    import ray

    return [n["Resources"]["CPU"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU")]


def plan_resources(cfg, cluster: dict, node_cpus: list[float] | None = None) -> dict:
    """Workers, GPUs and CPUs per worker that fit the cluster, and each worker's share of the global batch;
    refuses what cannot work, before any worker starts."""
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
        return _with_batch(cfg, {"num_workers": n, "use_gpu": True, "resources_per_worker": {"CPU": cpw, "GPU": gpw},
                                 "threads": max(1, int(cpw))})
    # CPU only: one worker per node owning that node's cores (DDP inside one machine's CPUs only adds copies).
    n = r.num_workers or len(node_cpus)
    cpw = r.cpus_per_worker or max(1.0, min(node_cpus) if n <= len(node_cpus) else cpus // n)
    if n * cpw > cpus:
        raise ConfigError(f"{n} workers x {cpw:g} CPUs need {n * cpw:g} CPUs; the cluster has {cpus:g}: "
                          "lower --num-workers or --cpus-per-worker (fractions are allowed)")
    return _with_batch(cfg, {"num_workers": n, "use_gpu": False, "resources_per_worker": {"CPU": cpw},
                             "threads": max(1, int(cpw))})


def _with_batch(cfg, plan: dict) -> dict:
    """The plan plus each worker's share of the global batch (optim.batch_size); refuses an uneven split."""
    batch, n = cfg.optim.batch_size, plan["num_workers"]
    if batch % n:
        fits = [k for k in range(1, batch + 1) if batch % k == 0]
        raise ConfigError(f"optim.batch_size {batch} is the global batch and cannot be split evenly over {n} "
                          f"workers: use --num-workers {max(k for k in fits if k <= n)} or a --batch-size that "
                          f"is a multiple of {n} (e.g. {batch - batch % n + n})")
    return {**plan, "batch_per_worker": batch // n}


def plan_line(plan: dict) -> str:
    """What run_training prints before the workers start: workers, their resources and the batch split."""
    n, per = plan["num_workers"], plan["batch_per_worker"]
    return (f"[ray] {n} worker(s), {'GPU' if plan['use_gpu'] else 'CPU'}, {plan['resources_per_worker']} each; "
            f"global batch {n * per} = {n} x per-worker batch {per}")


def cluster_plan(cfg) -> dict:
    """plan_resources for the cluster this driver is connected to."""
    import ray

    return plan_resources(cfg, ray.cluster_resources(), node_cpus())


def prepare(cfg, skip_bad=False, quiet=False, split_dir=None) -> dict:
    """Read and decode the data on the driver (a bad path fails here, in one line, before Ray starts), then
    hand it, and the validator when validation is on, to Ray's object store for every worker on every node."""
    import ray

    from .data import load_data
    from .data.report import data_report, report_lines, require_images

    data = load_data(cfg.data, cfg.model.image_size, split_file=(Path(split_dir) / "split.json") if split_dir else None,
                     skip_bad=skip_bad, progress=not quiet)
    report = data_report(data.sources, data)      # the figures `usgan-data check` prints, kept beside split.json
    if split_dir:
        Path(split_dir, "data_check.json").write_text(json.dumps(report, indent=1))
    require_images(report)
    if not quiet:
        print("\n".join(f"[data] {line}" for line in report_lines(report)), flush=True)
    print(f"[data] {len(data.train_idx)} training / {len(data.test_idx)} test images "
          f"from {', '.join(cfg.data.sources)}", flush=True)
    validator = None
    if cfg.run.validate_every:
        from .metrics.validation import build_validator
        validator = build_validator(data, cfg.data.cache_dir, progress=not quiet)
    init_ray()
    # Refs travel inside lists so Ray hands them over as refs instead of resolving them at the call.
    return {"data_ref": [ray.put(data)], "validator_ref": [ray.put(validator)] if validator else None}


def run_training(cfg, skip_bad=False, quiet=False, callbacks=None, prepared=None, before_step=None):
    """Train on Ray with `cfg`; returns (result, run_dir). The resolved config is saved beside the results.

    before_step(iteration, rank, world_size), when given, runs on every worker before each step (fault tests).
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    from .training_loop import train_loop_per_worker

    storage = resolve_storage(cfg.run.storage)
    run_dir = f"{storage.rstrip('/')}/{cfg.run.name}"
    local = "://" not in run_dir
    if local:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        cfg.save(Path(run_dir) / "config.yaml")
    prepared = prepared or prepare(cfg, skip_bad, quiet, split_dir=run_dir if local else None)
    plan = cluster_plan(cfg)
    print(plan_line(plan), flush=True)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.to_dict(), **prepared, "run_dir": run_dir, "threads": plan["threads"],
                           "batch_per_worker": plan["batch_per_worker"], "before_step": before_step},
        scaling_config=ray.train.ScalingConfig(num_workers=plan["num_workers"], use_gpu=plan["use_gpu"],
                                               resources_per_worker=plan["resources_per_worker"]),
        run_config=ray.train.RunConfig(
            name=cfg.run.name, storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or []),
    )
    return trainer.fit(), run_dir
