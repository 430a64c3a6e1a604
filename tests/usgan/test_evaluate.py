"""ACD and the local verification score on a real face, pixel metrics, evaluate() end to end, FER loading, CLI errors."""
import io
import tarfile

import face_recognition
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from usgan.checkpoints import save_checkpoint
from usgan.config import preset
from usgan.data import FaceData
from usgan.data.readers import Record
from usgan.data.synthetic import render_face
from usgan.evaluate import evaluate, markdown
from usgan.errors import FERWeightsError
from usgan.metrics.fer_classifier import FER_TO_OURS, FERNet, fer_predict, load_fer
from usgan.metrics.identity import acd, encode, local_verification_score, score_of_distance, verification_scores
from usgan.metrics.image_quality import image_scores
from usgan.models import Generator
from usgan.step import Engine

from .eval_helpers import assert_main_error, assert_one_line_error, face_crop, run_cli, run_main


def _noisy(img, sigma, seed):
    r = np.random.default_rng(seed)
    return np.clip(img + r.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_acd_encodes_the_box_face_recognition_detects_as_face_encodings_does():
    # A loose crop (the face about half its width, as a dataset's centre crop): the whole-crop box misplaces
    # the landmarks there (squared distance 0.50 to the detected box's encoding); a tight crop gives both alike.
    loose, tight = face_crop(pad=50), face_crop(pad=10)
    blank = np.full((128, 128, 3), 128, np.uint8)
    e, no_face = encode(np.stack([loose, tight, blank]), batch_size=2)
    # The paper's tool with its defaults: HOG detection, then the encoding of the detected box.
    for got, crop in zip(e, (loose, tight)):
        np.testing.assert_allclose(got, face_recognition.face_encodings(crop)[0], atol=1e-6)
    assert no_face.tolist() == [False, False, True]
    # A crop with no detected face is encoded whole, as the whole-crop variant encodes every crop.
    whole, nothing = encode(np.stack([loose, tight, blank]), box="whole-crop")
    np.testing.assert_allclose(e[2], whole[2], atol=1e-12)
    assert not nothing.any() and face_recognition.face_encodings(blank) == []
    # The two boxes give different encodings of the loose crop (0.50 apart): the check above can tell them apart.
    assert acd(e[:1], whole[:1]) > 0.25
    with pytest.raises(ValueError, match="unknown ACD face box 'face'"):
        encode(loose[None], box="face")


def test_acd_is_zero_for_the_same_image_and_grows_with_noise():
    face = face_crop()
    batch = np.stack([face, face, _noisy(face, 12, 0), _noisy(face, 60, 0)])
    e, _ = encode(batch, batch_size=3, box="whole-crop")   # the batch size splits the batch: both dlib calls must agree
    # Our batched route matches face_recognition's own call on the whole crop.
    ref = face_recognition.face_encodings(face, known_face_locations=[(0, 128, 128, 0)])[0]
    np.testing.assert_allclose(e[0], ref, atol=1e-6)
    assert acd(e[:1], e[1:2]) == 0.0
    mild, strong = acd(e[:1], e[2:3]), acd(e[:1], e[3:4])
    assert 0 < mild < strong
    s = verification_scores(np.repeat(e[:1], 3, 0), e[1:])
    assert s[0] > 99.7 and s[0] > s[1] > s[2]
    lv = local_verification_score(e[:1], e[1:2])
    assert lv["same_person_rate"] == 1.0 and lv["std"] == 0.0


def test_local_score_mapping_is_documented_logistic():
    assert score_of_distance(0.6) == pytest.approx(50.0)
    assert score_of_distance(0.3) == pytest.approx(95.26, abs=0.01)
    assert score_of_distance(0.0) > 99.7 and score_of_distance(1.2) < 0.3


def test_image_scores_on_known_changes():
    a = np.random.default_rng(0).integers(0, 246, (2, 32, 32, 3)).astype(np.uint8)
    same = image_scores(a, a)
    assert np.all(same["l1"] == 0) and np.all(same["psnr"] == 100) and np.allclose(same["ssim"], 1)
    shifted = image_scores(a + 10, a)
    assert np.allclose(shifted["l1"], 10 / 127.5)
    assert np.allclose(shifted["psnr"], 20 * np.log10(255 / 10))
    assert np.all(shifted["ssim"] < 1)
    # Tensors in [-1, 1] go through the same clamp-and-round as saved images.
    t = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert np.allclose(image_scores(t, a)["l1"], 0)


def _tiny_synthetic(identities=2, size=64):
    imgs, labels, records = [], [], []
    for i in range(identities):
        for k in range(7):
            imgs.append(np.array(render_face(i, k, seed=3, size=size)).transpose(2, 0, 1))
            labels.append(k)
            records.append(Record(f"/x/{i}_{k}.png", k, f"synthetic:id{i}", "synthetic"))
    n = len(records)
    return FaceData(torch.from_numpy(np.stack(imgs)), torch.tensor(labels), records,
                    torch.arange(0), torch.arange(n))


def test_evaluate_identity_generator_scores_like_its_input():
    data = _tiny_synthetic()
    G = Generator(conv_dim=8)
    nn.init.zeros_(G.main[-2].weight)      # tanh(0) + skip: returns its input exactly
    targets = [3, 5]
    res = evaluate(G, data, targets, classifier=lambda x: torch.full((len(x),), 3), max_faces=3, progress=False)
    rows = {r["target"]: r for r in res["per_expression"]}
    assert list(rows) == ["happy", "sad"]
    # The three faces are an afraid, an angry and a disgusted one: every one is translated to both targets.
    assert rows["happy"]["translations"] == 3 and res["overall"]["translations"] == 6
    o = res["overall"]
    assert o["acd"] == 0.0 and o["local_fvs_mean"] > 99.7 and o["same_person_rate"] == 1.0
    assert o["l1"] == pytest.approx(o["input_l1"]) and o["ssim"] == pytest.approx(o["input_ssim"])
    assert o["acd_to_target"] == pytest.approx(o["input_acd_to_target"]) and o["acd_to_target"] > 0
    assert rows["happy"]["expression_accuracy"] == 1.0 and rows["sad"]["expression_accuracy"] == 0.0
    md = markdown(res)
    assert "| **all** |" in md and "stand-in for Face++" in md
    # The drawn faces are no faces to dlib's detector: every crop falls back to the whole crop, and says so.
    assert res["acd_box"] == "detected" and res["no_face_inputs"] == 3 and o["no_face_outputs"] == 6
    assert "ACD (detected) ↓" in md and "No face detected in 3 of 3 inputs and 6 of 6 outputs" in md
    whole = evaluate(G, data, targets, max_faces=3, progress=False, acd_box="whole-crop")
    assert whole["overall"]["acd"] == o["acd"] and whole["no_face_inputs"] is None
    assert "ACD (whole-crop) ↓" in markdown(whole) and "No face detected" not in markdown(whole)


def _fer_blob(net):
    buf = io.BytesIO()
    torch.save({"network": net.state_dict(), "accuracy": 0.5, "epochs": 1}, buf)
    return buf.getvalue()


def test_fer_weights_load_from_sdist_and_predict_our_labels(tmp_path):
    torch.manual_seed(0)
    net = FERNet().eval()
    sdist = tmp_path / "facial_emotion_recognition-0.3.4.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        blob = _fer_blob(net)
        info = tarfile.TarInfo("facial_emotion_recognition-0.3.4/facial_emotion_recognition/model/model.pkl")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    loaded, meta = load_fer(sdist)
    assert meta["recorded_accuracy"] == 0.5
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    from usgan.metrics.fer_classifier import preprocess
    expected = FER_TO_OURS[net(preprocess(x)).argmax(1)]
    assert torch.equal(fer_predict(loaded, x), expected)
    # FER2013 order angry, disgust, fear, happy, sad, surprise, neutral -> ours afraid=0 ... surprised=6.
    assert FER_TO_OURS.tolist() == [1, 2, 0, 3, 5, 6, 4]
    bad = tmp_path / "model.pkl"
    torch.save({"weights": 1}, bad)
    with pytest.raises(FERWeightsError, match="no 'network' entry"):
        load_fer(bad)


def test_evaluate_cli_errors(tmp_path, capsys):
    from usgan.evaluate import main
    proc = run_cli("usgan.evaluate", "--checkpoint", tmp_path / "missing", "--out", tmp_path / "o")
    assert_one_line_error(proc, "does not exist")
    cfg = preset("tiny", **{"data.cache_dir": str(tmp_path / "cache")})
    save_checkpoint(tmp_path / "ck", Engine.build(cfg), cfg)
    assert_main_error(run_main(main, capsys, "--checkpoint", tmp_path / "ck", "--out", tmp_path / "o",
                               "--data", f"kdef:{tmp_path / 'no_kdef'}"), "KDEF folder")
    assert_main_error(run_main(main, capsys, "--checkpoint", tmp_path / "ck", "--out", tmp_path / "o",
                               "--targets", "smug"), "unknown expression 'smug'")
    assert_main_error(run_main(main, capsys, "--checkpoint", tmp_path / "ck", "--out", tmp_path / "o",
                               "--fer-weights", tmp_path / "none.pkl", "--max-faces", "0"), "must be >= 1")


def test_ablation_cli_errors(capsys):
    from usgan.ablation import main
    assert_one_line_error(run_cli("usgan.ablation", "--only", "9"), "--only '9'")
    assert_main_error(run_main(main, capsys, "--iters", "0"), "must be >= 1")
    assert_main_error(run_main(main, capsys, "--preset", "huge"), "unknown preset 'huge'")


def test_generator_outputs_make_a_demo_stimulus_folder_the_study_builds_from(tmp_path):
    from study_app.demo import demo_spec
    from usgan.demo_stimuli import DEMO_EXPRESSIONS, write_generator_outputs
    cfg = preset("tiny")
    torch.manual_seed(0)
    for method in ("usgan", "no-skip"):
        G = Generator(7, cfg.model.g_conv_dim, cfg.model.g_res_blocks, ultimate_skip=method == "usgan")
        write_generator_outputs(tmp_path, method, G, cfg.model.image_size, faces=2)
    spec = demo_spec(tmp_path, tmp_path / "study")
    assert set(spec.methods) == {"usgan", "no-skip"} and spec.expressions == DEMO_EXPRESSIONS
    out = Image.open(tmp_path / "methods" / "usgan" / "face02" / "sad.png")
    assert out.size == (cfg.model.image_size,) * 2 and out.mode == "RGB"
    assert Image.open(tmp_path / "inputs" / "face02.png").size == out.size
