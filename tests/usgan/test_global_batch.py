"""optim.batch_size is the global batch: the plan splits it over the workers, and targets come from all of it."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from usgan.config import preset
from usgan.errors import ConfigError
from usgan.launch import plan_line, plan_resources
from usgan.step import Engine


def test_four_gpu_workers_under_paper_take_two_images_each():
    plan = plan_resources(preset("paper"), {"GPU": 4, "CPU": 32})
    assert plan["num_workers"] == 4 and plan["batch_per_worker"] == 2
    assert plan_line(plan) == ("[ray] 4 worker(s), GPU, {'CPU': 1.0, 'GPU': 1.0} each; "
                               "global batch 8 = 4 x per-worker batch 2")
    one = plan_resources(preset("paper"), {"GPU": 1, "CPU": 8})
    assert one["batch_per_worker"] == 8                      # the authors' one GPU: the whole batch
    cpu = plan_resources(preset("tiny", run__num_workers=2, run__cpus_per_worker=1), {"CPU": 2})
    assert cpu["batch_per_worker"] == 2 and "global batch 4 = 2 x per-worker batch 2" in plan_line(cpu)


def test_a_batch_the_workers_cannot_share_evenly_is_refused_in_one_line():
    with pytest.raises(ConfigError) as e:
        plan_resources(preset("paper"), {"GPU": 3, "CPU": 32})
    msg = str(e.value)
    assert "\n" not in msg and "optim.batch_size 8 is the global batch" in msg and "over 3 workers" in msg
    assert "--num-workers 2" in msg and "multiple of 3 (e.g. 9)" in msg
    assert plan_resources(preset("paper", optim__batch_size=9), {"GPU": 3, "CPU": 32})["batch_per_worker"] == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _draw_targets(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        engine = Engine.build(preset("tiny"))
        engine.shard, engine.seed = (rank, world), 3
        labels = torch.tensor([0, 1]) + 2 * rank            # rank 0 holds labels 0, 1; rank 1 holds 2, 3
        draws = []
        for it in range(20):
            engine.iteration = it
            torch.manual_seed(rank)                           # each rank's own stream differs, as in training
            draws.append(engine._targets(labels))
        out[rank] = torch.stack(draws)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_workers_draw_targets_from_the_whole_global_batch():
    out = mp.Manager().dict()
    mp.spawn(_draw_targets, args=(2, _free_port(), out), nprocs=2)
    draws = torch.cat([out[0], out[1]], dim=1)                # (iterations, global batch)
    # Each iteration's targets are one permutation of the global batch's labels, shared out over the ranks,
    assert all(sorted(row.tolist()) == [0, 1, 2, 3] for row in draws)
    # so a worker of two often gets another worker's expressions; a per-worker permutation never would.
    assert (out[0] >= 2).any() and (out[1] <= 1).any()
    assert len({tuple(row.tolist()) for row in draws}) > 5    # drawn anew each iteration
