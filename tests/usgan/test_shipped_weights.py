"""The demo generator shipped in usgan/weights/: small, synthetic-only, and the default of synthesize and evaluate."""
import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from usgan import weights as named
from usgan.checkpoints import SHIPPED_G, load_generator, load_weights
from usgan.config import preset
from usgan.data.synthetic import render_face
from usgan.evaluate import main as evaluate_main
from usgan.models import Generator
from usgan.synthesize import main as synthesize_main


def test_shipped_weights_are_small_synthetic_only_and_load_with_their_config():
    assert SHIPPED_G.is_file() and SHIPPED_G.stat().st_size <= 10 * 2 ** 20
    state = torch.load(SHIPPED_G, weights_only=True)
    assert "main.0.weight" in state                        # the authors' plain state-dict layout
    G, cfg = load_generator(SHIPPED_G)
    assert cfg.data.sources == ["synthetic"] and cfg.model.image_size == 64 and G.ultimate_skip
    info = json.loads(SHIPPED_G.with_suffix(".json").read_text())
    assert "synthetic faces only" in info["trained_on"] and "not meant for real photos" in info["trained_on"]
    assert 0 <= info["target_accuracy"] <= 1 and info["held_out_translations"] > 0


def test_a_plain_state_dict_takes_its_config_from_the_yaml_beside_it(tmp_path):
    cfg = preset("demo", **{"model.g_conv_dim": 8, "model.residual_blur": True, "model.residual_scale": 2.0})
    torch.save(Generator(conv_dim=8, resize_conv=True).state_dict(), tmp_path / "mine-G.ckpt")  # as the demo
    cfg.save(tmp_path / "mine-G.yaml")
    G, loaded = load_generator(tmp_path / "mine-G.ckpt")
    assert loaded.model.image_size == 64 and loaded.preset == "demo"
    assert G.residual_blur and G.residual_scale == 2.0  # switches without weights come from the config
    (tmp_path / "mine-G.yaml").unlink()                    # without it: the paper's settings, as for the authors' files
    assert load_generator(tmp_path / "mine-G.ckpt")[1].model.image_size == 128


def test_synthesize_and_evaluate_run_without_a_checkpoint(tmp_path):
    render_face(5, "neutral", size=128).save(tmp_path / "face.png")
    assert synthesize_main(["--input", str(tmp_path / "face.png"), "--crop", "center", "--expression", "happy",
                            "--out", str(tmp_path / "syn")]) == 0
    assert json.loads((tmp_path / "syn" / "synthesize.json").read_text())["checkpoint"] == "demo"
    assert evaluate_main(["--data", "synthetic", "--set", "data.synthetic_identities=14", "--set",
                          f"data.cache_dir={tmp_path / 'cache'}", "--max-faces", "2", "--targets", "happy",
                          "--quiet", "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["checkpoint"] == "demo"


def test_no_checkpoint_and_no_shipped_weights_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(named.KNOWN, "demo", dataclasses.replace(named.KNOWN["demo"], file="missing-G.ckpt"))
    with pytest.raises(named.WeightsError, match="the shipped demo weights are missing .* reinstall usgan-toolkit"):
        load_weights(None)


def test_the_photo_page_opens_with_the_shipped_weights(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("USGAN_APP_WEIGHTS", raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "usgan" / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert at.radio(key="weights").value == "demo" and at.file_uploader and not at.text_input
    assert "synthetic cartoon faces only" in at.info[0].value


def test_a_runs_plain_g_file_loads_as_the_network_that_was_trained(tmp_path):
    """A blur and a scale hold no weights: {iter}-G.ckpt must find them beside it, or in engine.pt."""
    from usgan.checkpoints import save_checkpoint
    from usgan.step import Engine
    cfg = preset("demo", model__residual_blur=True)
    save_checkpoint(tmp_path, Engine.build(cfg), cfg)
    g_file = tmp_path / "0-G.ckpt"
    for case in ("with its YAML", "an older folder: engine.pt only"):
        G, loaded = load_generator(g_file)
        assert loaded.preset == "demo" and G.residual_blur and G.residual_scale == 2.0, case
        (tmp_path / "0-G.yaml").unlink(missing_ok=True)
    (tmp_path / "engine.pt").unlink()
    G, _ = load_generator(g_file)          # the authors' own files: no config anywhere, the paper's network
    assert not G.residual_blur and G.residual_scale == 1.0


def test_the_readme_picture_is_what_the_shipped_weights_draw(tmp_path):
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("draw_demo_strip", root / "scripts" / "draw_demo_strip.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(tmp_path / "strip.png")
    drawn, shown = (np.asarray(Image.open(p), dtype=np.int16) for p in (tmp_path / "strip.png", root / "docs/demo-strip.png"))
    # bit for bit on the machine that drew it; another CPU's float rounding may move a pixel by one level
    assert drawn.shape == shown.shape and np.abs(drawn - shown).max() <= 1
