"""Does the demo preset learn? Target-expression accuracy and distance to the true target over training.

    python benchmarks/learning.py                    # the demo preset, as `python -m usgan.train` runs it
    python benchmarks/learning.py --iters 300 --every 100 --skip-ray-overhead

On the synthetic set every translation has a known target. At several points of training it reports the share
of held-out translations that an independent classifier (trained on the ground truth only, chance 14 %) reads
as the asked-for expression, and the L1 distance from each output to the true target, next to the distance of
the untouched input to it. Then it times the bare training step against the same step inside a 1-worker Ray
TorchTrainer, in the same run. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_name, load_average  # noqa: E402

from usgan.config import apply_overrides, preset  # noqa: E402
from usgan.data import load_data  # noqa: E402
from usgan.metrics.expression_classifier import load_or_train  # noqa: E402
from usgan.metrics.synthetic_scores import translation_scores  # noqa: E402
from usgan.step import Engine  # noqa: E402
from usgan.train import data_tag  # noqa: E402


def machine() -> dict:
    return {"platform": platform.platform(), "cpu": cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load_average": load_average()}


def learning_curve(cfg, data, classifier, every: int) -> list[dict]:
    torch.manual_seed(cfg.run.seed)
    engine = Engine.build(cfg)
    batches = data.batches("train", cfg.optim.batch_size, seed=cfg.run.seed)
    curve, t0 = [], time.time()
    for i in range(1, cfg.optim.num_iters + 1):
        engine.train_step(*next(batches))
        if i % every == 0 or i == cfg.optim.num_iters:
            s = translation_scores(engine.G, data, classifier)
            row = {"iteration": i, "seconds": round(time.time() - t0, 1),
                   "target_accuracy": round(s["target_accuracy"], 4), "l1_to_target": round(s["l1_to_target"], 4),
                   "l1_input_to_target": round(s["l1_input_to_target"], 4)}
            curve.append(row)
            print(json.dumps(row), flush=True)
    return curve


def _timed_steps(cfg, data, n: int, warmup: int = 3) -> tuple[list[float], float]:
    """Seconds per iteration (D step + G step every n_critic) over n iterations after a warm-up, and the share
    of one core that the rest of the machine (every other process) used meanwhile."""
    import psutil
    torch.manual_seed(0)
    engine = Engine.build(cfg)
    batches = data.batches("train", cfg.optim.batch_size, seed=0)
    times = []
    for i in range(warmup + n):
        if i == warmup:
            wall0, own0, busy0 = time.perf_counter(), time.process_time(), _busy_seconds(psutil)
        x, y = next(batches)
        t = time.perf_counter()
        engine.train_step(x, y)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    wall = time.perf_counter() - wall0
    others = (_busy_seconds(psutil) - busy0) - (time.process_time() - own0)
    return times, max(0.0, others) / wall


def _busy_seconds(psutil) -> float:
    t = psutil.cpu_times()
    return sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq", "steal") if hasattr(t, f))


def _ray_worker(config):
    import ray.train
    torch.set_num_threads(config["threads"])
    from usgan.config import from_dict
    import tempfile
    times, others = _timed_steps(from_dict(config["cfg"]), ray.get(config["data"][0]), config["n"])
    # Train V2 keeps a run's final metrics with its latest checkpoint, so report a (tiny) one.
    with tempfile.TemporaryDirectory() as d:
        Path(d, "step_seconds.json").write_text(json.dumps(times))
        ray.train.report({"step_seconds": statistics.median(times), "other_processes_cores": others},
                         checkpoint=ray.train.Checkpoint.from_directory(d))


def ray_overhead(cfg, data, n: int) -> dict:
    """Median step time bare vs inside a 1-worker TorchTrainer owning the same cores, same run."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    times, others_bare = _timed_steps(cfg, data, n)
    bare = statistics.median(times)
    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    trainer = TorchTrainer(_ray_worker, train_loop_config={"cfg": cfg.to_dict(), "data": [ray.put(data)], "n": n,
                                                           "threads": torch.get_num_threads()},
                           scaling_config=ray.train.ScalingConfig(num_workers=1,
                                                                  resources_per_worker={"CPU": os.cpu_count()}),
                           run_config=ray.train.RunConfig(storage_path=str(Path("~/usgan-runs").expanduser()),
                                                          name="bench-ray-overhead"))
    metrics = trainer.fit().metrics
    in_ray = metrics["step_seconds"]
    times, others_again = _timed_steps(cfg, data, n)   # bracket the Ray run against drift
    bare = min(bare, statistics.median(times))
    # Where the time goes on a small machine: CPU that other processes (Ray's GCS, raylet, Train controller and
    # agents, in the Ray case) took from the cores the step runs on, in cores.
    return {"bare_step_s": round(bare, 4), "ray_step_s": round(in_ray, 4), "ray_overhead": round(in_ray / bare - 1, 4),
            "other_processes_cores_bare": round(min(others_bare, others_again), 3),
            "other_processes_cores_in_ray": round(metrics["other_processes_cores"], 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--iters", type=int)
    ap.add_argument("--every", type=int, help="iterations between measurements (default: a fifth of the run)")
    ap.add_argument("--overhead-steps", type=int, default=20)
    ap.add_argument("--skip-ray-overhead", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args(argv)
    cfg = preset(a.preset)
    if a.iters:
        cfg.optim.num_iters = a.iters
        cfg.optim.num_iters_decay = min(cfg.optim.num_iters_decay, a.iters // 2)
    apply_overrides(cfg, a.set)
    data = load_data(cfg.data, cfg.model.image_size)
    clf, clf_acc = load_or_train(data, Path(cfg.data.cache_dir).expanduser(), data_tag(cfg, data))
    print(f"independent classifier: {clf_acc:.1%} on held-out ground truth; chance is {1 / 7:.1%}", flush=True)
    curve = learning_curve(cfg, data, clf, a.every or max(1, cfg.optim.num_iters // 5))
    result = {"benchmark": "learning", "preset": cfg.preset, "iterations": cfg.optim.num_iters,
              "classifier_accuracy": round(clf_acc, 4), "curve": curve, "final": curve[-1],
              "goal_target_accuracy": 0.70, "goal_met": curve[-1]["target_accuracy"] >= 0.70
              and curve[-1]["l1_to_target"] < curve[-1]["l1_input_to_target"]}
    if not a.skip_ray_overhead:
        result["ray"] = ray_overhead(cfg, data, a.overhead_steps)
        result["ray"]["goal_met"] = result["ray"]["ray_overhead"] <= 0.05
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
