"""The reader panel: unseen scoring identities, its counting, its L1 split, and its cached readers."""
import dataclasses

import pytest
import torch
import torch.nn as nn

from usgan.config import preset
from usgan.data import load_data
from usgan.data.expressions import EXPRESSIONS
from usgan.metrics import panel as P
from usgan.models import Generator


class Always(nn.Module):
    """A reader that names one expression whatever it sees."""

    def __init__(self, label):
        super().__init__()
        self.label = label

    def forward(self, x):
        return torch.nn.functional.one_hot(torch.full((len(x),), self.label), 7).float()


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    cfg = preset("tiny", **{"data.cache_dir": str(tmp_path_factory.mktemp("cache"))})
    train = load_data(cfg.data, 64, progress=False)
    return cfg, train, P.scoring_data(cfg.data, 64, progress=False)


def test_scoring_identities_are_people_no_training_or_validation_face_shows(sets):
    cfg, train, scoring = sets
    assert len(scoring.records) == 7 * P.SCORING_IDENTITIES
    seen = {bytes(img.numpy()) for img in train.images}
    assert not any(bytes(img.numpy()) in seen for img in scoring.images)
    with pytest.raises(ValueError, match=f"seed {P.SCORING_SEED} is one the panel reads translations on; train on"):
        P.scoring_data(dataclasses.replace(cfg.data, synthetic_seed=P.SCORING_SEED), 64)


def test_validation_people_are_others_again_and_no_run_may_train_on_them(sets):
    cfg, train, scoring = sets
    validation = P.scoring_data(cfg.data, 64, progress=False, validation=True)
    assert len(validation.records) == 7 * P.VALIDATION_IDENTITIES
    seen = {bytes(img.numpy()) for img in torch.cat([train.images, scoring.images])}
    assert not any(bytes(img.numpy()) in seen for img in validation.images)
    with pytest.raises(ValueError, match=f"seed {P.VALIDATION_SEED} is one the panel reads translations on"):
        P.scoring_data(dataclasses.replace(cfg.data, synthetic_seed=P.VALIDATION_SEED), 64, validation=True)


def _identity_G():
    G = Generator(conv_dim=8)
    nn.init.zeros_(G.main[-2].weight)           # with the ultimate skip: G(x, c) == x
    return G


def test_counts_per_reader_and_per_expression_under_the_median_reader(sets):
    _, _, scoring = sets
    panel = [{"name": f"always-{e}", "architecture": "const", "net": Always(k), "held_out_accuracy": 0.99}
             for k, e in ((3, "happy"), (5, "sad"), (0, "afraid"))]
    s = P.read_translations(_identity_G(), scoring, panel)
    assert s["translations"] == 6 * 7 * P.SCORING_IDENTITIES
    # every target is asked equally often, so a reader naming one expression reads a seventh right
    assert [r["accuracy"] for r in s["readers"]] == [round(1 / 7, 4)] * 3
    assert [r["real_scoring_accuracy"] for r in s["readers"]] == [round(1 / 7, 4)] * 3
    assert s["median_reader"] == "always-happy" and s["readers_ok"]
    assert s["per_expression"] == {e: float(e == "happy") for e in EXPRESSIONS}
    panel[1]["held_out_accuracy"] = 0.94
    assert not P.read_translations(_identity_G(), scoring, panel[:2])["readers_ok"]


def test_the_untouched_input_scores_an_l1_ratio_of_one_nearly_all_on_changed_pixels(sets):
    _, _, scoring = sets
    s = P.read_translations(_identity_G(), scoring, [{"name": "a", "architecture": "const", "net": Always(0),
                                                      "held_out_accuracy": 1.0}])
    assert s["l1_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert s["l1_ratio_changed"] + s["l1_ratio_unchanged"] == pytest.approx(1.0, abs=2e-4)
    assert s["l1_ratio_unchanged"] < 0.05 and 0.02 < s["changed_pixel_share"] < 0.5
    G = _identity_G()
    with torch.no_grad():
        G.main[-2].weight[:, 0, 3, 3] = 0.5     # a change everywhere: the untouched pixels now carry error too
    moved = P.read_translations(G, scoring, [{"name": "a", "architecture": "const", "net": Always(0),
                                              "held_out_accuracy": 1.0}])
    assert moved["l1_ratio_unchanged"] > 10 * s["l1_ratio_unchanged"]


def test_augmentation_moves_recolours_and_adds_noise_but_keeps_the_shape():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    y = P.panel_augment(x)
    assert y.shape == x.shape and not torch.allclose(y, x, atol=0.05)
    assert (y.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs().max() > 0.01   # colour moved the level


def test_the_panel_has_two_architectures_and_reloads_from_its_cache(sets, tmp_path):
    _, train, scoring = sets
    assert len(P.READERS) >= 5 and len({arch for _, arch, _ in P.READERS}) >= 2
    first = P.load_or_train_panel(train, tmp_path, progress=False, epochs=1)
    assert [r["name"] for r in first] == [name for name, _, _ in P.READERS]
    assert len(list(tmp_path.glob("panel-reader-*-e1-*.pt"))) == len(P.READERS)
    again = P.load_or_train_panel(train, tmp_path, progress=False, epochs=1)
    x = scoring.as_float(torch.arange(14))
    for a, b in zip(first, again):
        assert a["held_out_accuracy"] == b["held_out_accuracy"]
        assert torch.equal(a["net"](x), b["net"](x))
    assert P.Gray48Net()(x).shape == (14, 7)


def test_panel_lines_print_the_panel_the_table_and_both_l1_ratios(sets):
    _, _, scoring = sets
    s = P.read_translations(_identity_G(), scoring, [{"name": "r", "architecture": "const", "net": Always(6),
                                                      "held_out_accuracy": 0.97}])
    text = "\n".join(P.panel_lines(s))
    assert "median: 14.3% (r)" in text and "| read as the target | 0.0% | 0.0% | 0.0% | 0.0% | 0.0% | 0.0% | 100.0% |" in text
    assert "L1 to the true target: 1.000x the input's" in text
    assert "on the pixels the expression changes" in text and "on those it leaves alone" in text


def test_the_pinned_panel_is_the_demo_datas_and_loads_without_training(tmp_path):
    cfg = preset("demo", **{"data.cache_dir": str(tmp_path / "data")})
    data = load_data(cfg.data, 64, progress=False)
    tag = data.tag()
    missing = [n for n, _, _ in P.READERS if P.pinned_reader(P.PINNED, n, tag, 40) is None]
    assert not missing, f"pinned readers {missing} are not for the demo's data {tag}: run scripts/pin_panel.py"
    panel = P.load_or_train_panel(data, tmp_path / "readers", progress=False)
    assert not (tmp_path / "readers").exists()          # nothing trained, nothing cached
    x, y = data.as_float(data.test_idx), data.labels[data.test_idx]
    for r in panel:   # what the pinned file says of itself holds for the half-precision weights it holds
        assert r["held_out_accuracy"] >= P.REQUIRED_ACCURACY
        assert abs(float((P.predict(r["net"], x) == y).float().mean()) - r["held_out_accuracy"]) <= 1 / len(y)


def test_a_pinned_reader_of_other_data_is_not_used(sets, tmp_path):
    _, train, _ = sets
    first = P.load_or_train_panel(train, tmp_path / "cache", progress=False, epochs=1, pinned=None)
    P.pin_panel(first, "another-tag", 1, tmp_path / "pinned")
    assert P.pinned_reader(tmp_path / "pinned", first[0]["name"], train.tag(), 1) is None
    P.pin_panel(first, train.tag(), 1, tmp_path / "pinned")
    blob = P.pinned_reader(tmp_path / "pinned", first[0]["name"], train.tag(), 1)
    assert blob["state_dict"][next(iter(blob["state_dict"]))].dtype == torch.float16
    assert P.pinned_reader(tmp_path / "pinned", first[0]["name"], train.tag(), 2) is None   # other epochs
