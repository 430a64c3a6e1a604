"""ONNX export: dynamic batch, parity with PyTorch and the authors' module under real ONNX Runtime; CLI errors."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import torch

from usgan.authors_reference import authors_all_expressions
from usgan.export import main

from .eval_helpers import assert_main_error, assert_one_line_error, authors_checkpoint, run_cli, run_main


def test_onnx_export_matches_the_authors_module_at_any_batch(tmp_path, capsys):
    ckpt = tmp_path / "usgan_87_G.ckpt"
    ref = authors_checkpoint(ckpt, conv_dim=8, seed=1)
    onnx_path = tmp_path / "g.onnx"
    assert main(["--checkpoint", str(ckpt), "--onnx", str(onnx_path), "--image-size", "32", "--check-batch", "5"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["max_abs_diff"] < 1e-4 and set(report["per_batch"]) == {"1", "5"}
    # The crop the model expects rides along: a file of theirs with no record of its own gets our default crop.
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["usgan.crop.eye_y"] == "0.42" and meta["usgan.crop.eye_gap"] == "0.34"
    assert report["checkpoint"] == str(ckpt)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == sess.get_inputs()[1].shape[0] == "batch"
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    ref.train()
    theirs = authors_all_expressions(ref, x)                        # (7, 3, 3, S, S)
    xs = x[None].expand(7, -1, -1, -1, -1).reshape(21, 3, 32, 32).numpy()
    cs = np.repeat(np.eye(7, dtype=np.float32), 3, axis=0)
    got = sess.run(None, {"image": xs, "target": cs})[0].reshape(7, 3, 3, 32, 32)
    assert np.abs(got - theirs.numpy()).max() < 1e-4


def test_export_cli_errors(tmp_path, capsys):
    # One real process (no traceback reaches the terminal), the other cases through the same run() in-process.
    proc = run_cli("usgan.export", "--checkpoint", tmp_path / "none.ckpt", "--onnx", tmp_path / "g.onnx")
    assert_one_line_error(proc, "does not exist")
    bad = tmp_path / "junk.ckpt"
    bad.write_bytes(b"\x00not a checkpoint")
    assert_main_error(run_main(main, capsys, "--checkpoint", bad, "--onnx", tmp_path / "g.onnx"), "cannot read checkpoint")
    assert_main_error(run_main(main, capsys, "--checkpoint", bad, "--onnx", tmp_path / "g.txt"), "should name a .onnx")
    assert_main_error(run_main(main, capsys, "--onnx", tmp_path / "g.onnx"), "required: --checkpoint")
