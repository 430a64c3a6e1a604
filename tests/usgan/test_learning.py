"""The demo configuration's generator can learn expressions: trained on true targets, it moves toward them."""
import torch

from usgan.config import preset
from usgan.data import load_data
from usgan.metrics.oracle import supervised_step, target_batches
from usgan.step import build_networks


def _l1_to_targets(G, batch):
    x, c, y = batch
    with torch.no_grad():
        return float((G(x, c) - y).abs().mean())


def test_demo_generator_gets_closer_to_true_targets_in_a_few_dozen_steps(tmp_path):
    cfg = preset("demo", **{"data.cache_dir": str(tmp_path), "data.synthetic_identities": 4})
    data = load_data(cfg.data, cfg.model.image_size, progress=False)
    faces = data.index("train")[:16]
    held = next(target_batches(data, 48, seed=1, faces=faces))   # fixed translations of the same faces
    torch.manual_seed(0)
    G, _ = build_networks(cfg)
    opt = torch.optim.Adam(G.parameters(), cfg.optim.g_lr, (cfg.optim.beta1, cfg.optim.beta2))
    start = _l1_to_targets(G, held)
    batches = target_batches(data, 8, seed=0, faces=faces)
    for _ in range(40):
        supervised_step(G, opt, *next(batches))
    end = _l1_to_targets(G, held)
    # A few dozen steps remove most of the random initial residual; beating the untouched input takes this G
    # far longer (benchmarks/learning.py --oracle-steps measures when), so that is not asserted here.
    assert end < 0.9 * start, (start, end)
    x, c, _ = held
    with torch.no_grad():                                # and what it drew depends on the asked-for expression
        other = torch.roll(c, 1, dims=1)
        assert (G(x, c) - G(x, other)).abs().mean() > 1e-3
