"""Train US-GAN with Ray Train: DDP across GPU nodes, CPU workers where there is no GPU.

    python -m usgan.train                                   # demo preset, synthetic faces, local Ray
    ray job submit --working-dir . -- python -m usgan.train --preset paper \
        --data kdef:/data/KDEF --data rafd:/data/RaFD --data cfee:/data/CFEE
    python -m usgan.train --config my.yaml --set loss.lambda_rec=10 --iters 5000
    python -m usgan.train --print-config                    # the resolved settings, as YAML

Re-running with the same --name and --storage resumes from the last checkpoint. The pure-PyTorch
iteration lives in step.py, the loop every worker runs in training_loop.py, the Ray-side setup in launch.py;
this file is the command line.
"""
from __future__ import annotations

import argparse
import sys
import time

from .cli_common import add_config_flags
from .config import config_from_cli, validate
from .errors import ConfigError
from .launch import run_training


# ------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m usgan.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(ap, "demo (default), demo-paper, paper, stargan, tiny",
                     "YAML file (sections model, loss, optim, data, speed, run)")
    ap.add_argument("--iters", type=int, help="total iterations (optim.num_iters)")
    ap.add_argument("--decay-iters", type=int, help="iterations at the end over which the lr schedule "
                    "(optim.lr_schedule) decays")
    ap.add_argument("--batch-size", type=int, help="global batch size, split evenly over the workers")
    ap.add_argument("--lambda-cls", type=float)
    ap.add_argument("--lambda-rec", type=float)
    ap.add_argument("--lambda-gp", type=float)
    ap.add_argument("--num-workers", type=int, help="DDP workers (default: all GPUs, else CPU workers)")
    ap.add_argument("--gpus-per-worker", type=float)
    ap.add_argument("--cpus-per-worker", type=float)
    ap.add_argument("--name", help="run name; the same name resumes")
    ap.add_argument("--storage", help="where runs live: a local dir, an NFS mount or s3://bucket/prefix")
    ap.add_argument("--skip-bad", action="store_true", help="leave out unreadable or misnamed images instead of failing")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        cfg = validate(config_from_cli(a))
        if a.print_config:
            import yaml
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        o = cfg.optim
        print(f"[usgan] preset {cfg.preset}: {o.num_iters} iterations, global batch {o.batch_size}, "
              f"lr {o.g_lr:g}/{o.d_lr:g} ({o.lr_schedule} schedule), {cfg.model.image_size}px, lambdas cls/rec/gp "
              f"{cfg.loss.lambda_cls}/{cfg.loss.lambda_rec}/{cfg.loss.lambda_gp}, data {', '.join(cfg.data.sources)}",
              flush=True)
        t0 = time.time()
        result, run_dir = run_training(cfg, skip_bad=a.skip_bad)
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
