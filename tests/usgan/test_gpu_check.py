"""benchmarks/gpu_check.py: skips cleanly without CUDA, and its whole code path runs on CPU at a toy size."""
import json
import subprocess
import sys

import pytest
import torch

from .eval_helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _run(*args, timeout=600):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_without_cuda_it_reports_a_skip_and_exits_0():
    out = _run("--minutes", "1")
    assert set(out) == {"skipped"} and "no CUDA device" in out["skipped"] and "--device cpu --tiny" in out["skipped"]


@pytest.mark.slow
@pytest.mark.ray
def test_the_whole_check_runs_on_cpu_at_a_toy_size():
    out = _run("--device", "cpu", "--tiny", "--iters", "12", "--minutes", "8")
    train = out["train_one_device"]
    assert set(train) == {"authors_fp32", "ours_fp32"}          # bf16 autocast is left to the GPU
    assert all(v["images_per_s"] > 0 and v["iterations_timed"] == 10 for v in train.values())
    # Both loops trained the same step from the same seed: their losses after it agree.
    assert train["ours_fp32"]["last_losses"]["D/loss_gp"] == pytest.approx(
        train["authors_fp32"]["last_losses"]["D/loss_gp"], rel=1e-4)
    assert out["speedup_vs_authors"]["authors_fp32"] == 1.0
    inference = out["inference_7_expressions"]["median_ms"]
    assert inference["authors_fp32_7_calls"] > 0 and inference["max_abs_diff_fp32_to_authors"] < 1e-4
    ray_run = out["ray_train"]
    assert "error" not in ray_run, ray_run
    assert (ray_run["workers"], ray_run["backend"], ray_run["per_worker_batch"]) == (2, "gloo", 2)
    assert ray_run["global_batch_reported"] == ray_run["global_batch_configured"] == 4
    assert ray_run["rank_param_spread"] == 0.0 and ray_run["iterations"] == 12 and ray_run["images_per_s"] > 0
    assert out["within_budget"] and out["config"]["preset"] == "tiny"
