"""Ray Train on this machine: DDP across two CPU workers, a worker crash mid-run, resuming by name."""
import re

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


def test_two_ddp_workers_stay_identical(local_ray, tmp_path):
    from usgan.train import run
    cfg = _cfg(tmp_path, "ddp", run__num_workers=2, run__cpus_per_worker=1)
    result, run_dir = run(cfg, quiet=True)
    assert result.error is None
    assert result.metrics["iteration"] == cfg.optim.num_iters
    assert result.metrics["rank_param_spread"] == 0.0      # G and D parameters equal on both ranks
    ckpt = result.checkpoint.path
    sd = torch.load(f"{ckpt}/{cfg.optim.num_iters}-G.ckpt")
    assert "main.9.main.0.weight" in sd                    # the authors' plain state-dict layout
    assert list((tmp_path / "runs" / "ddp" / "samples").glob("*.png"))


def test_worker_crash_resumes_from_last_checkpoint_and_keeps_the_schedule(local_ray, tmp_path, monkeypatch):
    from usgan.train import FAIL_ONCE_ENV, run
    marker = tmp_path / "crashed.txt"
    monkeypatch.setenv(FAIL_ONCE_ENV, f"4:{marker}")      # dies once at iteration 4; last checkpoint at 3
    cfg = _cfg(tmp_path, "crash", optim__num_iters=8, optim__num_iters_decay=6, run__log_every=1)
    result, run_dir = run(cfg, quiet=True)
    assert marker.exists(), "the injected crash never happened"
    assert result.error is None and result.metrics["iteration"] == 8
    log = (tmp_path / "runs" / "crash" / "progress.log").read_text()
    assert "# resumed from iteration 3" in log
    its = [int(m) for m in re.findall(r"^\[it (\d+)/8\]", log, re.M)]
    assert its == [1, 2, 3, 4, 4, 5, 6, 7, 8]              # only the iteration after the last checkpoint is redone
    for it, lr in re.findall(r"^\[it (\d+)/8\].*\| lr ([0-9.e+-]+) \|", log, re.M):
        assert float(lr) == pytest.approx(linear_decay_lr(cfg.optim.g_lr, int(it) - 1, 8, 6), rel=1e-2)

    # Re-running the same name with a longer schedule continues the counter instead of starting over.
    monkeypatch.delenv(FAIL_ONCE_ENV)
    cfg2 = _cfg(tmp_path, "crash", optim__num_iters=10, optim__num_iters_decay=6, run__log_every=1)
    result2, _ = run(cfg2, quiet=True)
    assert result2.metrics["iteration"] == 10
    log = (tmp_path / "runs" / "crash" / "progress.log").read_text()
    assert "# resumed from iteration 8" in log
    assert re.findall(r"^\[it (\d+)/10\]", log, re.M) == ["9", "10"]
