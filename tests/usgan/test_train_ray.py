"""Ray Train on this machine: DDP across two CPU workers, a worker crash mid-run, resuming by name."""
import os
import re
import time
from pathlib import Path

import pytest
import torch

from usgan.config import preset
from usgan.step import linear_decay_lr

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def _cfg(tmp_path, name, **over):
    cfg = preset("tiny", **over)
    cfg.run.name, cfg.run.storage = name, str(tmp_path / "runs")
    cfg.data.cache_dir = str(tmp_path / "cache")
    return cfg


class CrashOnce:
    """before_step hook: the last rank dies once at `iteration`, as a lost node would look to Ray."""

    def __init__(self, iteration: int, marker: Path):
        self.iteration, self.marker = iteration, marker

    def __call__(self, it: int, rank: int, world: int) -> None:
        if it == self.iteration and rank == world - 1 and not self.marker.exists():
            self.marker.write_text(f"crashed at iteration {it}\n")
            # Ray's controller collects reports by polling; give it the time a real crash after a checkpoint would.
            time.sleep(3)
            os._exit(1)


def test_two_ddp_workers_stay_identical(local_ray, tmp_path):
    from usgan.launch import run_training
    cfg = _cfg(tmp_path, "ddp", run__num_workers=2, run__cpus_per_worker=1)
    result, run_dir = run_training(cfg, quiet=True)
    assert result.error is None
    assert result.metrics["iteration"] == cfg.optim.num_iters
    assert result.metrics["rank_param_spread"] == 0.0      # G and D parameters equal on both ranks
    # optim.batch_size is the global batch: the two workers' steps together took exactly that many images.
    assert result.metrics["global_batch"] == cfg.optim.batch_size == 4
    ckpt = result.checkpoint.path
    sd = torch.load(f"{ckpt}/{cfg.optim.num_iters}-G.ckpt")
    assert "main.9.main.0.weight" in sd                    # the authors' plain state-dict layout
    assert list((tmp_path / "runs" / "ddp" / "samples").glob("*.png"))


def test_worker_crash_resumes_from_last_checkpoint_and_keeps_the_schedule(local_ray, tmp_path):
    from usgan.launch import run_training
    marker = tmp_path / "crashed.txt"
    cfg = _cfg(tmp_path, "crash", optim__num_iters=8, optim__num_iters_decay=6, run__log_every=1)
    # Dies once at iteration 4; the last checkpoint is at 3.
    result, run_dir = run_training(cfg, quiet=True, before_step=CrashOnce(4, marker))
    assert marker.exists(), "the injected crash never happened"
    assert result.error is None and result.metrics["iteration"] == 8
    log = (tmp_path / "runs" / "crash" / "progress.log").read_text()
    assert "# resumed from iteration 3" in log
    its = [int(m) for m in re.findall(r"^\[it (\d+)/8\]", log, re.M)]
    assert its == [1, 2, 3, 4, 4, 5, 6, 7, 8]              # only the iteration after the last checkpoint is redone
    for it, lr in re.findall(r"^\[it (\d+)/8\].*\| lr ([0-9.e+-]+) \|", log, re.M):
        assert float(lr) == pytest.approx(linear_decay_lr(cfg.optim.g_lr, int(it) - 1, 8, 6), rel=1e-2)

    # Re-running the same name with a longer schedule continues the counter instead of starting over.
    cfg2 = _cfg(tmp_path, "crash", optim__num_iters=10, optim__num_iters_decay=6, run__log_every=1)
    result2, _ = run_training(cfg2, quiet=True)
    assert result2.metrics["iteration"] == 10
    log = (tmp_path / "runs" / "crash" / "progress.log").read_text()
    assert "# resumed from iteration 8" in log
    assert re.findall(r"^\[it (\d+)/10\]", log, re.M) == ["9", "10"]


def test_a_classifier_warm_up_ending_at_chance_is_flagged_in_the_log(local_ray, tmp_path):
    from usgan.launch import run_training
    # tiny's D after 3 classifier steps still reads every face alike (loss ~ ln 7)
    cfg = _cfg(tmp_path, "chance", optim__cls_warmup=3, run__num_workers=1, run__cpus_per_worker=2)
    result, _ = run_training(cfg, quiet=True)
    assert result.error is None
    log = (tmp_path / "runs" / "chance" / "progress.log").read_text()
    assert re.search(r"^# D's classifier is still at chance after its warm-up .* --set model.d_init_scale=0.7",
                     log, re.M)


def test_a_one_worker_run_is_the_benchmarks_single_run(local_ray, tmp_path):
    """benchmarks/learning.py and the ablation score `single_run`; it must be the run usgan.train makes."""
    from usgan.data import load_data
    from usgan.launch import run_training
    from usgan.step import single_run
    cfg = _cfg(tmp_path, "same", run__num_workers=1, run__cpus_per_worker=2)
    result, _ = run_training(cfg, quiet=True)
    assert result.error is None
    in_ray = torch.load(f"{result.checkpoint.path}/{cfg.optim.num_iters}-G.ckpt")

    data = load_data(cfg.data, cfg.model.image_size, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)   # the worker's count: the same reductions in the same order
    try:
        finals = {}
        for seed in (cfg.run.seed, cfg.run.seed + 1):
            cfg.run.seed = seed
            for engine, _ in single_run(cfg, data):
                pass
            finals[seed] = engine.G_eval.state_dict()
    finally:
        torch.set_num_threads(threads)
    same, other = finals[0], finals[1]
    gap = max((same[k].float() - in_ray[k].float()).abs().max().item() for k in in_ray)
    control = max((other[k].float() - in_ray[k].float()).abs().max().item() for k in in_ray)
    assert gap < 1e-5, f"the bare loop drifted from the Ray run by {gap}"
    assert control > 1e-3, "another seed gave the same weights: the comparison cannot tell runs apart"
