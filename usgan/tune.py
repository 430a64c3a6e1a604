"""Search the loss weights (lambda_cls, lambda_rec, lambda_gp) with Ray Tune; every trial is a Ray Train run.

    python -m usgan.tune                                   # demo preset, 8 trials, ASHA, synthetic faces
    python -m usgan.tune --trials 16 --iters 2000 --space lambda_rec=0.3:30 --space lambda_gp=3:30
    python -m usgan.tune --multi-objective                 # NSGA-II over (expression accuracy, identity error)
    ray job submit --working-dir . -- python -m usgan.tune --name my-search

Each trial runs the training entry point's worker loop in a TorchTrainer (Train V2: a driver function per trial
with Tune's report callback), reporting the validation objective of usgan/metrics/validation.py every
--validate-every iterations; ASHA stops weak trials at those points. Re-running with the same --name resumes
an interrupted search. Results: trials.csv, trials.md, objective_vs_lambdas.png, and the exact
`python -m usgan.train ...` command of the best trial.
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

from .config import config_from_cli, validate
from .errors import ConfigError

PAPER = {"lambda_cls": 1.0, "lambda_rec": 1.0, "lambda_gp": 10.0}
DEFAULT_SPACE = {"lambda_cls": (0.1, 10.0), "lambda_rec": (0.1, 10.0), "lambda_gp": (1.0, 100.0)}
METRICS = {"val/objective": "max", "val/expression_accuracy": "max", "val/identity_error": "min"}


def parse_space(items: list[str]) -> dict[str, tuple[float, float]]:
    """`lambda_rec=0.3:30` entries over the defaults; refuses unknown names and bounds a log scale cannot take."""
    space = dict(DEFAULT_SPACE)
    for item in items or []:
        name, eq, rng = item.partition("=")
        name = name.strip()
        if name not in DEFAULT_SPACE:
            raise ConfigError(f"--space {item!r}: unknown parameter '{name}'; tunable: {', '.join(DEFAULT_SPACE)}")
        lo, colon, hi = rng.partition(":")
        try:
            lo_f, hi_f = float(lo), float(hi)
        except ValueError:
            raise ConfigError(f"--space {item!r} is not NAME=LOW:HIGH, e.g. lambda_rec=0.3:30") from None
        if not eq or not colon or not (math.isfinite(lo_f) and math.isfinite(hi_f)):
            raise ConfigError(f"--space {item!r} is not NAME=LOW:HIGH, e.g. lambda_rec=0.3:30")
        if lo_f <= 0 or hi_f <= lo_f:
            raise ConfigError(f"--space {item!r}: bounds must satisfy 0 < LOW < HIGH (the search is log-uniform)")
        space[name] = (lo_f, hi_f)
    return space


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m usgan.tune", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--data", action="append", metavar="KIND:PATH")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--iters", type=int, help="iterations per trial (default: the preset's)")
    ap.add_argument("--validate-every", type=int, help="iterations between validation reports (ASHA's rungs)")
    ap.add_argument("--space", action="append", default=[], metavar="NAME=LOW:HIGH",
                    help="log-uniform range of lambda_cls, lambda_rec or lambda_gp")
    ap.add_argument("--multi-objective", action="store_true",
                    help="Optuna NSGA-II over expression accuracy (max) and identity error (min); prints the Pareto front")
    ap.add_argument("--grace", type=int, help="ASHA grace period in iterations (default: 2 validation rounds)")
    ap.add_argument("--name", default="usgan-tune")
    ap.add_argument("--storage", default="~/usgan-runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return ap


def trial_command(cfg, lambdas: dict) -> str:
    """The train command that reproduces a trial."""
    parts = ["python", "-m", "usgan.train", "--preset", cfg.preset]
    for src in cfg.data.sources:
        parts += ["--data", src]
    parts += ["--iters", str(cfg.optim.num_iters), "--decay-iters", str(cfg.optim.num_iters_decay)]
    for k in ("lambda_cls", "lambda_rec", "lambda_gp"):
        parts += [f"--{k.replace('_', '-')}", f"{lambdas[k]:.4g}"]
    return " ".join(shlex.quote(p) for p in parts)


def pareto_front(rows: list[dict]) -> list[dict]:
    """Trials no other trial beats on both expression accuracy (max) and identity error (min)."""
    def dominated(a, b):
        return (b["val/expression_accuracy"] >= a["val/expression_accuracy"] and
                b["val/identity_error"] <= a["val/identity_error"] and
                (b["val/expression_accuracy"] > a["val/expression_accuracy"] or
                 b["val/identity_error"] < a["val/identity_error"]))
    ok = [r for r in rows if r.get("val/expression_accuracy") is not None]
    return [a for a in ok if not any(dominated(a, b) for b in ok if b is not a)]


def _trial_driver(config: dict, prepared: dict | None = None) -> None:
    """One Tune trial: a Ray Train run of the training loop with this trial's lambdas."""
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from .config import from_dict
    from .launch import run_training

    cfg = from_dict(config["base"])
    for k in ("lambda_cls", "lambda_rec", "lambda_gp"):
        setattr(cfg.loss, k, float(config[k]))
    cfg.run.name = f"{config['search_name']}/{ray.tune.get_context().get_trial_id()}"
    run_training(cfg, quiet=True, callbacks=[TuneReportCallback()], prepared=prepared)


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        space = parse_space(a.space)
        cfg = config_from_cli(a)
        cfg.run.validate_every = a.validate_every or max(1, cfg.optim.num_iters // 4)
        cfg.run.checkpoint_every = cfg.run.validate_every
        if a.trials < 1:
            raise ConfigError("--trials must be >= 1")
        validate(cfg)
        return _search(a, cfg, space)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _search(a, cfg, space) -> int:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from .launch import cluster_plan, init_ray, prepare, resolve_storage

    storage = resolve_storage(a.storage)
    out_dir = Path(storage) / a.name
    t0 = time.time()
    init_ray()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Data and classifier once, shared by every trial through the object store.
    prepared = prepare(cfg, quiet=False, split_dir=out_dir)
    cluster = ray.cluster_resources()
    plan = cluster_plan(cfg)
    per_trial_cpu = plan["num_workers"] * plan["resources_per_worker"]["CPU"]
    per_trial_gpu = plan["num_workers"] * plan["resources_per_worker"].get("GPU", 0)
    fits = [int(cluster.get("CPU", 1) // per_trial_cpu)]
    if per_trial_gpu:
        fits.append(int(cluster.get("GPU", 0) // per_trial_gpu))
    concurrent = max(1, min(fits + [a.trials]))
    print(f"[tune] {a.trials} trials, {concurrent} at a time ({plan['num_workers']} worker(s) of "
          f"{plan['resources_per_worker']} each), {cfg.optim.num_iters} iterations, validation every "
          f"{cfg.run.validate_every}; space (log-uniform): "
          + ", ".join(f"{k} {lo:g}..{hi:g}" for k, (lo, hi) in space.items()), flush=True)

    param_space = {k: tune.loguniform(lo, hi) for k, (lo, hi) in space.items()}
    param_space.update(base=cfg.to_dict(), search_name=a.name)
    grace = a.grace or 2 * cfg.run.validate_every
    scheduler = ASHAScheduler(time_attr="iteration", metric="val/objective", mode="max",
                              max_t=cfg.optim.num_iters, grace_period=min(grace, cfg.optim.num_iters),
                              reduction_factor=2)
    search_alg = None
    if a.multi_objective:
        import optuna
        from ray.tune.search.optuna import OptunaSearch
        search_alg = OptunaSearch(metric=["val/expression_accuracy", "val/identity_error"], mode=["max", "min"],
                                  sampler=optuna.samplers.NSGAIISampler(seed=a.seed))
    # The trial's driver only waits on its TorchTrainer: it holds no CPU the workers need (a bundle needs
    # some resource, hence a little memory).
    trainable = tune.with_resources(tune.with_parameters(_trial_driver, prepared=prepared),
                                    {"cpu": 0, "memory": 64 * 2**20})
    run_config = tune.RunConfig(name=a.name, storage_path=storage)
    exp_path = str(out_dir)
    if tune.Tuner.can_restore(exp_path):
        print(f"[tune] resuming the interrupted search in {exp_path}", flush=True)
        tuner = tune.Tuner.restore(exp_path, trainable=trainable, param_space=param_space,
                                   resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(trainable, param_space=param_space, run_config=run_config,
                           tune_config=tune.TuneConfig(num_samples=a.trials, scheduler=scheduler,
                                                       search_alg=search_alg, max_concurrent_trials=concurrent))
    grid = tuner.fit()
    rows = write_results(grid, cfg, out_dir, multi=a.multi_objective)
    done = [r for r in rows if r.get("val/objective") is not None]
    if not done:
        print("error: no trial reported a validation score; see the trial errors above", file=sys.stderr)
        return 1
    best = max(done, key=lambda r: r["val/objective"])
    print(f"\n[tune] {len(rows)} trials in {time.time() - t0:.0f} s; ASHA stopped "
          f"{sum(r['stopped_early'] for r in rows)} early. Results: {out_dir}/trials.csv, trials.md, "
          "objective_vs_lambdas.png")
    print(f"[tune] best: objective {best['val/objective']:.4f} (expression accuracy "
          f"{best['val/expression_accuracy']:.3f}, identity error {best['val/identity_error']:.3f})")
    print(f"[tune] reproduce it with:\n  {best['command']}")
    return 0


def write_results(grid, cfg, out_dir: Path, multi: bool = False) -> list[dict]:
    """trials.csv / trials.md / objective_vs_lambdas.png (+ pareto.csv in multi-objective mode)."""
    import csv

    rows = []
    for res in grid:
        c, m = res.config or {}, res.metrics or {}
        lambdas = {k: float(c.get(k, PAPER[k])) for k in PAPER}
        reached = int(m.get("iteration", 0) or 0)
        rows.append({
            "trial": os.path.basename(res.path) if res.path else "", **lambdas,
            "iterations": reached, "stopped_early": bool(res.error is None and reached < cfg.optim.num_iters),
            "error": str(res.error).splitlines()[0] if res.error else "",
            **{k: (float(m[k]) if k in m else None) for k in METRICS},
            "command": trial_command(cfg, lambdas)})
    rows.sort(key=lambda r: -(r["val/objective"] if r["val/objective"] is not None else -math.inf))
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0].keys()) if rows else []
    with open(out_dir / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    md = ["| " + " | ".join(c for c in cols if c != "command") + " |", "|" + "---|" * (len(cols) - 1)]
    md += ["| " + " | ".join(fmt(r[c]) for c in cols if c != "command") + " |" for r in rows]
    (out_dir / "trials.md").write_text("\n".join(md) + "\n")
    if multi:
        front = pareto_front(rows)
        with open(out_dir / "pareto.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(front)
        print("[tune] Pareto front (expression accuracy up, identity error down):")
        for r in front:
            print(f"  acc {r['val/expression_accuracy']:.3f}  id-err {r['val/identity_error']:.3f}  "
                  f"cls {r['lambda_cls']:.3g} rec {r['lambda_rec']:.3g} gp {r['lambda_gp']:.3g}")
    _plot(rows, out_dir / "objective_vs_lambdas.png")
    return rows


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["val/objective"] is not None]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, k in zip(axes, PAPER):
        for stopped, marker in ((False, "o"), (True, "x")):
            sel = [r for r in ok if r["stopped_early"] == stopped]
            ax.scatter([r[k] for r in sel], [r["val/objective"] for r in sel], marker=marker,
                       label="stopped by ASHA" if stopped else "ran to the end")
        ax.axvline(PAPER[k], color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel(f"{k} (paper: {PAPER[k]:g})")
    axes[0].set_ylabel("validation objective")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
