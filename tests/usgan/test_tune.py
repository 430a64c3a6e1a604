"""Ray Tune over the loss weights: a real two-trial search end to end, and bad search spaces refused early."""
import csv
import subprocess
import sys

import pytest

from usgan.errors import ConfigError
from usgan.tune import pareto_front, parse_space


def test_search_space_defaults_and_overrides():
    space = parse_space(["lambda_rec=0.3:30"])
    assert space["lambda_rec"] == (0.3, 30.0) and space["lambda_gp"] == (1.0, 100.0)


@pytest.mark.parametrize("item, message", [
    ("lambda_rec=-1:10", "0 < LOW < HIGH"),
    ("lambda_rec=0:10", "0 < LOW < HIGH"),
    ("lambda_rec=10:1", "0 < LOW < HIGH"),
    ("lambda_foo=1:2", "unknown parameter 'lambda_foo'"),
    ("lambda_cls=abc", "is not NAME=LOW:HIGH"),
])
def test_bad_search_spaces_fail_with_one_line(item, message):
    with pytest.raises(ConfigError, match=message):
        parse_space([item])


def test_bad_space_on_the_command_line_stops_before_any_trial(tmp_path):
    out = subprocess.run([sys.executable, "-m", "usgan.tune", "--space", "lambda_gp=-5:10", "--storage",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: --space 'lambda_gp=-5:10': bounds must satisfy 0 < LOW < HIGH "
                                               "(the search is log-uniform)"]
    assert "Traceback" not in out.stderr and not any(tmp_path.iterdir())


def test_pareto_front_keeps_only_non_dominated_trials():
    rows = [{"val/expression_accuracy": a, "val/identity_error": e, "id": i}
            for i, (a, e) in enumerate([(0.9, 0.5), (0.5, 0.2), (0.4, 0.6), (0.9, 0.6), (0.2, 0.1)])]
    assert sorted(r["id"] for r in pareto_front(rows)) == [0, 1, 4]


@pytest.mark.ray
@pytest.mark.slow
def test_two_trial_search_end_to_end(tmp_path):
    cmd = [sys.executable, "-m", "usgan.tune", "--preset", "tiny", "--trials", "2", "--iters", "8",
           "--validate-every", "2", "--grace", "2", "--storage", str(tmp_path / "runs"), "--name", "search",
           "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    d = tmp_path / "runs" / "search"
    rows = list(csv.DictReader(open(d / "trials.csv")))
    assert len(rows) == 2
    for r in rows:
        assert 0.1 <= float(r["lambda_cls"]) <= 10 and 1 <= float(r["lambda_gp"]) <= 100
        assert r["val/objective"] != "" and 0 <= float(r["val/expression_accuracy"]) <= 1
        # ASHA's decision is recorded: a trial either ran all 8 iterations or was stopped at a rung.
        assert r["stopped_early"] == str(int(r["iterations"]) < 8)
        assert int(r["iterations"]) in (2, 4, 6, 8)
    assert (d / "trials.md").read_text().count("\n") == 4
    assert (d / "objective_vs_lambdas.png").stat().st_size > 1000
    best = max(rows, key=lambda r: float(r["val/objective"]))
    assert f"reproduce it with:\n  {best['command']}" in out.stdout
    assert best["command"].startswith("python -m usgan.train --preset tiny --data synthetic --iters 8")
