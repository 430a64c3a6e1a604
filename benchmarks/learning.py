"""Does the demo preset learn? Target-expression accuracy and distance to the true target over training.

    python benchmarks/learning.py                    # the demo preset, as `python -m usgan.train` runs it
    python benchmarks/learning.py --iters 300 --every 100 --skip-ray-overhead
    python benchmarks/learning.py --oracle-steps 3000 --every 300   # plus G trained on the true targets

On the synthetic set every translation has a known target. At several points of training it reports the share
of held-out translations that an independent classifier (trained on the ground truth only, chance 14 %) reads
as the asked-for expression, and the L1 distance from each output to the true target, next to the distance of
the untouched input to it. With --oracle-steps it also trains the same G directly on the true targets (L1
supervision, which the GAN never has): how many steps this generator needs to learn the mapping at all. Then
it times the bare training step against the same step inside a 1-worker Ray TorchTrainer, in the same run.
The run is `single_run`: step for step the one `python -m usgan.train` makes with the same preset and seed.
The final outputs are also read by --readers more classifiers of the same kind (other seeds): their spread says
how much the accuracy depends on the one reader. Then a panel of five readers of two architectures, trained with
shifts, colour and noise (usgan/metrics/panel.py) and pinned in usgan/metrics/panel_readers/, so that
every machine judges with the same readers, reads the final G's translations of people of a synthetic seed
no training or validation uses: each reader's accuracy, the median, the table per expression under the median
reader, and the L1 to the true target over the input's, on the pixels the expression changes and on the rest.
Architecture switches pass through --set, e.g. --set model.attention=true.
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import describe

from usgan.config import config_from_cli
from usgan.data import load_data
from usgan.metrics.expression_classifier import load_or_train
from usgan.metrics.oracle import supervised_step, target_batches
from usgan.metrics.panel import (load_or_train_panel, panel_lines, panel_people, read_translations,
                                 scoring_data)
from usgan.metrics.synthetic_scores import translation_scores
from usgan.config import validate
from usgan.run_outputs import grid_faces, save_sample_grid
from usgan.step import Engine, single_run


def _scored_row(counter: str, i: int, t0: float, G, data, classifier, terms=None, readers=()) -> dict:
    """One printed point of a curve: G's held-out translation scores after i steps (and the last loss terms)."""
    s = translation_scores(G, data, classifier, readers=readers)
    row = {counter: i, "seconds": round(time.time() - t0, 1), "target_accuracy": round(s["target_accuracy"], 4),
           "l1_to_target": round(s["l1_to_target"], 4), "l1_input_to_target": round(s["l1_input_to_target"], 4),
           **{k: round(v, 4) for k, v in (terms or {}).items() if k != "lr"}}
    if readers:
        row["other_readers"] = [round(a, 4) for a in s["reader_accuracies"]]
    print(json.dumps(row), flush=True)
    return row


def learning_curve(cfg, data, classifier, every: int, grids: str | None = None, save_g: str | None = None,
                   readers=()) -> tuple[list[dict], torch.nn.Module]:
    """The run's scores every `every` iterations (at the last one also as `readers` read it), and its final G."""
    faces = data.as_float(grid_faces(data))
    curve, t0 = [], time.time()
    terms = {}
    for engine, step_terms in single_run(cfg, data):   # the Quick start's own run, step for step
        terms.update(step_terms)
        i = engine.iteration
        if i % every == 0 or i == cfg.optim.num_iters:
            last = i == cfg.optim.num_iters
            curve.append(_scored_row("iteration", i, t0, engine.G_eval, data, classifier, terms,
                                     readers if last else ()))
            if grids:
                save_sample_grid(engine, faces, Path(grids) / f"{i:06d}.png")
            if save_g:   # with its config beside it, so load_generator and scripts/ship_weights.py read it
                torch.save(engine.G_eval.state_dict(), save_g)
                cfg.save(Path(save_g).with_suffix(".yaml"))
    return curve, engine.G_eval


def oracle_curve(cfg, data, classifier, steps: int, every: int) -> list[dict]:
    """G alone, trained by L1 to the true target image (usgan/metrics/oracle.py): a ceiling for the GAN.

    The same generator, optimizer and batch size as the run, so the curve says how many steps this G needs.
    """
    torch.manual_seed(cfg.run.seed)
    engine = Engine.build(cfg)
    batches = target_batches(data, cfg.optim.batch_size, seed=cfg.run.seed)
    curve, t0 = [], time.time()
    for i in range(1, steps + 1):
        supervised_step(engine.G, engine.g_opt, *next(batches))
        if i % every == 0 or i == steps:
            curve.append(_scored_row("oracle_step", i, t0, engine.G, data, classifier))
    return curve


class Turns:
    """Two processes taking turns through files in one folder: turn t belongs to side t % 2 and may start once
    file t exists; its owner creates file t + 1 when done. Waiting is a 2 ms sleep loop, so the side that is not
    computing leaves the cores to the other."""

    def __init__(self, folder: str, timeout: float = 600.0):
        self.folder, self.timeout = Path(folder), timeout

    def wait(self, name) -> None:
        deadline = time.monotonic() + self.timeout
        while not (self.folder / str(name)).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the other side of the Ray-overhead timing never wrote {self.folder / str(name)}")
            time.sleep(0.002)

    def mark(self, name) -> None:
        (self.folder / str(name)).write_text("")


def _timed_turns(cfg, data, folder: str, side: int, turns: int) -> list[float]:
    """This side's seconds per iteration in each of its turns; a turn is one whole n_critic cycle."""
    torch.manual_seed(0)
    engine = Engine.build(cfg)
    # Time the GAN's iterations, which are nearly all of a run, not the cheap D-only warm-up ones.
    engine.iteration = max(cfg.optim.cls_warmup, cfg.optim.d_warmup)
    batches = data.batches("train", cfg.optim.batch_size, seed=0)
    for _ in range(cfg.optim.n_critic):                       # warm-up: first-touch allocations, oneDNN kernels
        engine.train_step(*next(batches))
    sync = Turns(folder)
    sync.mark(f"ready-{side}")
    if side == 0:
        sync.wait("ready-1")
        sync.mark(0)
    seconds = []
    for t in range(side, 2 * turns, 2):
        sync.wait(t)
        spent = 0.0
        for _ in range(cfg.optim.n_critic):
            x, y = next(batches)
            t0 = time.perf_counter()
            engine.train_step(x, y)
            spent += time.perf_counter() - t0
        seconds.append(spent / cfg.optim.n_critic)
        sync.mark(t + 1)
    sync.wait(2 * turns)   # stay idle (not exiting, not freeing memory) until the other side's last turn is over
    return seconds


def _bare_side(cfg_dict: dict, data, folder: str, turns: int, threads: int, out) -> None:
    """The bare step, in a plain child process that never imports Ray."""
    from usgan.config import from_dict
    torch.set_num_threads(threads)
    out.put(_timed_turns(from_dict(cfg_dict), data, folder, 0, turns))


def _ray_side(config):
    """The same step inside a Ray Train worker."""
    import ray.train

    from usgan.config import from_dict
    torch.set_num_threads(config["threads"])
    seconds = _timed_turns(from_dict(config["cfg"]), ray.get(config["data"][0]), config["folder"], 1,
                           config["turns"])
    # Train V2 keeps a run's final metrics with its latest checkpoint, so report a (tiny) one.
    with tempfile.TemporaryDirectory() as d:
        Path(d, "step_seconds.json").write_text(json.dumps(seconds))
        ray.train.report({"step_seconds": json.dumps(seconds)}, checkpoint=ray.train.Checkpoint.from_directory(d))


def ray_overhead(cfg, data, turns: int) -> dict:
    """Step time inside a 1-worker TorchTrainer against the bare step, measured in alternating turns.

    This VM's speed drifts by 20-50 % over minutes (the host steals up to a fifth of the CPU), which swamped
    timings taken one after the other. So both run at once and take turns: a plain child process (bare) and the
    Ray Train worker each build the engine, then alternate one whole n_critic cycle at a time, the idle side
    sleeping. Neighbouring turns see the same machine, and the overhead comes from the paired turns.
    """
    import multiprocessing as mp

    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    store = tempfile.mkdtemp(prefix="usgan-bench-ray-")   # timing runs are not results: keep ~/usgan-runs clean
    folder = tempfile.mkdtemp(prefix="usgan-bench-turns-")
    threads = torch.get_num_threads()
    spawn = mp.get_context("spawn")   # a fresh interpreter: the bare side must not inherit this driver's Ray
    queue = spawn.Queue()
    bare_proc = spawn.Process(target=_bare_side, args=(cfg.to_dict(), data, folder, turns, threads, queue))
    try:
        bare_proc.start()
        trainer = TorchTrainer(_ray_side, train_loop_config={"cfg": cfg.to_dict(), "data": [ray.put(data)],
                                                             "folder": folder, "turns": turns, "threads": threads},
                               scaling_config=ray.train.ScalingConfig(num_workers=1,
                                                                      resources_per_worker={"CPU": os.cpu_count()}),
                               run_config=ray.train.RunConfig(storage_path=store, name="ray-overhead"))
        in_ray = json.loads(trainer.fit().metrics["step_seconds"])
        bare = queue.get(timeout=600)
        bare_proc.join(timeout=60)
    finally:
        if bare_proc.is_alive():
            bare_proc.kill()
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    # Each Ray turn is compared with the bare turns on either side of it, which cancels a linear drift.
    # Neighbouring ratios share a bare turn, so the interval from their spread is approximate (a bit narrow).
    ratios = [r / ((bare[i] + bare[i + 1]) / 2 if i + 1 < len(bare) else bare[i]) for i, r in enumerate(in_ray)]
    logs = [math.log(r) for r in ratios]
    mean, se = statistics.mean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    return {"turns": turns, "iterations_per_turn": cfg.optim.n_critic,
            "bare_step_s": round(statistics.mean(bare), 4), "ray_step_s": round(statistics.mean(in_ray), 4),
            "ray_overhead": round(math.exp(mean) - 1, 4),
            "ray_overhead_95ci": [round(math.exp(mean - 2 * se) - 1, 4), round(math.exp(mean + 2 * se) - 1, 4)],
            "bare_turns_s": [round(v, 4) for v in bare], "ray_turns_s": [round(v, 4) for v in in_ray]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--iters", type=int)
    ap.add_argument("--every", type=int, help="iterations between measurements (default: a fifth of the run)")
    ap.add_argument("--overhead-turns", type=int, default=20,
                    help="turns per side in the Ray-overhead timing; a turn is one n_critic cycle")
    ap.add_argument("--skip-ray-overhead", action="store_true")
    ap.add_argument("--skip-learning", action="store_true", help="no GAN training curve")
    ap.add_argument("--oracle-steps", type=int, default=0,
                    help="also train G alone by L1 to the true targets for this many steps (a ceiling for the GAN)")
    ap.add_argument("--grids", metavar="DIR", help="also save the sample grid (held-out faces x 7 expressions) "
                                                   "at every measurement, as DIR/<iteration>.png")
    ap.add_argument("--save-g", metavar="FILE", help="save the trained G as a plain state dict (the authors' layout), "
                    "its config beside it as FILE.yaml")
    ap.add_argument("--readers", type=int, default=4,
                    help="more classifiers of the same kind (seeds 1..N) that also read the final outputs")
    ap.add_argument("--skip-panel", action="store_true", help="no reader panel on the final G")
    ap.add_argument("--panel-on", choices=["scoring", "validation"], default="scoring",
                    help="whose translations the panel reads: 40 people of synthetic seed 9001, read only to report "
                         "(default), or 24 of seed 3, where settings are chosen")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="any setting, e.g. --set model.attention=true")
    a = ap.parse_args(argv)
    cfg = validate(config_from_cli(a))
    data = load_data(cfg.data, cfg.model.image_size)
    result = {"benchmark": "learning", "preset": cfg.preset, "iterations": cfg.optim.num_iters}
    if not a.skip_learning or a.oracle_steps:
        clf, clf_acc = load_or_train(data, cfg.data.cache_dir)
        print(f"independent classifier: {clf_acc:.1%} on held-out ground truth; chance is {1 / 7:.1%}", flush=True)
        result["classifier_accuracy"] = round(clf_acc, 4)
    if not a.skip_learning:
        # More readers of the same kind (other seeds): a translation that only one classifier accepts is not
        # an expression a person would name, and the outputs will be judged by a classifier that is not ours.
        readers = [load_or_train(data, cfg.data.cache_dir, seed=k)[0] for k in range(1, a.readers + 1)]
        curve, G_final = learning_curve(cfg, data, clf, a.every or max(1, cfg.optim.num_iters // 5), a.grids,
                                        a.save_g, readers)
        final = curve[-1]
        result.update(curve=curve, final=final, goal_target_accuracy=0.70,
                      goal_met=final["target_accuracy"] >= 0.70 and final["l1_to_target"] < final["l1_input_to_target"])
        if readers:
            result["other_readers_median"] = statistics.median(final["other_readers"])
        if not a.skip_panel:
            t0 = time.time()
            panel = load_or_train_panel(data, cfg.data.cache_dir)
            on_val = a.panel_on == "validation"
            people = scoring_data(cfg.data, cfg.model.image_size, validation=on_val)
            result["panel"] = read_translations(G_final, people, panel, seed=panel_people(on_val)[0])
            p = result["panel"]
            p["seconds"] = round(time.time() - t0, 1)
            p["goal_met"] = (p["readers_ok"] and p["median_accuracy"] >= 0.85 and p["l1_ratio"] <= 0.8
                             and min(p["per_expression"].values()) >= 0.60)
            print("\n".join(panel_lines(p)), flush=True)
    if a.oracle_steps:
        result["oracle_curve"] = oracle_curve(cfg, data, clf, a.oracle_steps, a.every or max(1, a.oracle_steps // 5))
    if not a.skip_ray_overhead:
        result["ray"] = ray_overhead(cfg, data, a.overhead_turns)
        result["ray"]["goal_met"] = result["ray"]["ray_overhead"] <= 0.05
    result["machine"] = describe()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
