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
import shutil
import statistics
import sys
import tempfile
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
    import tempfile

    import ray.train

    from usgan.config import from_dict
    torch.set_num_threads(config["threads"])
    times, others = _timed_steps(from_dict(config["cfg"]), ray.get(config["data"][0]), config["n"])
    # Train V2 keeps a run's final metrics with its latest checkpoint, so report a (tiny) one.
    with tempfile.TemporaryDirectory() as d:
        Path(d, "step_seconds.json").write_text(json.dumps(times))
        ray.train.report({"step_seconds": statistics.mean(times), "other_processes_cores": others},
                         checkpoint=ray.train.Checkpoint.from_directory(d))


def ray_overhead(cfg, data, n: int, rounds: int) -> dict:
    """Mean step time bare vs inside a 1-worker TorchTrainer owning the same cores, alternated `rounds` times.

    Steps are whole n_critic cycles (D-only and G iterations in their real proportion). A small VM's speed drifts
    by 10-20 % over minutes, so bare and in-Ray runs alternate and the overhead is taken from the totals.
    """
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    n = max(cfg.optim.n_critic, n - n % cfg.optim.n_critic)
    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    data_ref = ray.put(data)
    store = tempfile.mkdtemp(prefix="usgan-bench-ray-")   # timing runs are not results: keep ~/usgan-runs clean

    def in_ray_run(steps: int, name: str) -> dict:
        trainer = TorchTrainer(_ray_worker, train_loop_config={"cfg": cfg.to_dict(), "data": [data_ref], "n": steps,
                                                               "threads": torch.get_num_threads()},
                               scaling_config=ray.train.ScalingConfig(num_workers=1,
                                                                      resources_per_worker={"CPU": os.cpu_count()}),
                               run_config=ray.train.RunConfig(storage_path=store, name=name))
        return trainer.fit().metrics

    # Untimed: the first Train run after ray.init shares the cores with Ray's own start-up (agents, prestarted
    # workers); that is a one-off cost per cluster, not a cost per step.
    bare, in_ray, others_bare, others_ray = [], [], [], []
    try:
        in_ray_run(cfg.optim.n_critic, "warmup")
        for r in range(rounds):
            times, others = _timed_steps(cfg, data, n)
            bare.append(statistics.mean(times))
            others_bare.append(others)
            metrics = in_ray_run(n, f"round-{r}")
            in_ray.append(metrics["step_seconds"])
            others_ray.append(metrics["other_processes_cores"])
            print(f"ray overhead round {r + 1}/{rounds}: bare {bare[-1]:.4f} s/it, in Ray {in_ray[-1]:.4f} s/it "
                  f"({in_ray[-1] / bare[-1] - 1:+.1%})", flush=True)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    # other_processes_*: cores that every other process (in the Ray case: GCS, raylet, agents, the Train
    # controller; Ray also runs its workers at nice 15, so these win every contended slice) took meanwhile.
    return {"steps_per_round": n, "rounds": rounds, "bare_step_s": [round(v, 4) for v in bare],
            "ray_step_s": [round(v, 4) for v in in_ray],
            "ray_overhead": round(sum(in_ray) / sum(bare) - 1, 4),
            "ray_overhead_per_round": [round(b / a - 1, 4) for a, b in zip(bare, in_ray)],
            "other_processes_cores_bare": round(statistics.mean(others_bare), 3),
            "other_processes_cores_in_ray": round(statistics.mean(others_ray), 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--iters", type=int)
    ap.add_argument("--every", type=int, help="iterations between measurements (default: a fifth of the run)")
    ap.add_argument("--overhead-steps", type=int, default=40, help="iterations per timing (whole n_critic cycles)")
    ap.add_argument("--overhead-rounds", type=int, default=3, help="bare / in-Ray alternations")
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
        result["ray"] = ray_overhead(cfg, data, a.overhead_steps, a.overhead_rounds)
        result["ray"]["goal_met"] = result["ray"]["ray_overhead"] <= 0.05
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
