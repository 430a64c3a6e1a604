"""Dataset readers on fixture files with the real naming schemes, the split, the cache, the synthetic set."""
import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from usgan.config import preset
from usgan.data import FaceData, load_data
from usgan.data.cache import build_cache
from usgan.data.cfee import read_cfee
from usgan.data.expressions import EXPRESSIONS, FOLDER_CODES, parse_targets, to_label
from usgan.data.readers import Record, read_expression_folders, read_kdef, read_manifest, read_rafd
from usgan.data.sources import read_source
from usgan.data.split import split_subjects
from usgan.data.synthetic import identity_params, render_face
from usgan.errors import DatasetError, UnknownExpression


def _img(path, size=(40, 52), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_label_order_is_the_authors():
    assert [to_label(c) for c in FOLDER_CODES] == list(range(7))
    assert to_label("Fearful") == 0 and to_label("SU") == 6 and to_label("happiness") == 3
    assert parse_targets("all") == list(range(7)) and parse_targets("sad,happy") == [5, 3]
    with pytest.raises(UnknownExpression, match="unknown expression 'smirk'"):
        to_label("smirk")


def _kdef(root):
    for sess, g, n in [("A", "F", "01"), ("B", "F", "01"), ("A", "M", "02"), ("A", "F", "03")]:
        for e in ("AF", "HA", "SU"):
            for angle in ("S", "HL", "FR"):
                _img(root / f"{sess}{g}{n}" / f"{sess}{g}{n}{e}{angle}.JPG")
    return root


def test_kdef_frontal_by_default_and_sessions_share_a_subject(tmp_path):
    recs = read_kdef(_kdef(tmp_path / "KDEF"))
    assert len(recs) == 4 * 3 and all(r.path.endswith("S.JPG") for r in recs)
    assert {r.subject for r in recs} == {"kdef:F01", "kdef:M02", "kdef:F03"}   # AF01 and BF01 are one person
    assert {r.label for r in recs} == {0, 3, 6}
    assert len(read_kdef(tmp_path / "KDEF", angles=["S", "HL"])) == 24


def test_kdef_bad_names_fail_with_one_line_unless_skipped(tmp_path):
    root = _kdef(tmp_path / "KDEF")
    _img(root / "AF01" / "AF01XXS.JPG")            # unknown expression code
    _img(root / "AF01" / "holiday.jpg")
    with pytest.raises(DatasetError, match=r"2 file\(s\) .* do not follow KDEF naming .*--skip-bad"):
        read_kdef(root)
    assert len(read_kdef(root, skip_bad=True)) == 12


def test_rafd_frontal_camera_and_gaze_and_no_contempt(tmp_path):
    root = tmp_path / "RaFD"
    for cam in ("090", "045"):
        for sid in ("01", "02"):
            for expr in ("angry", "contemptuous", "happy"):
                for gaze in ("frontal", "left"):
                    _img(root / f"Rafd{cam}_{sid}_Caucasian_female_{expr}_{gaze}.jpg")
    recs = read_rafd(root)
    assert len(recs) == 2 * 2 and {r.label for r in recs} == {1, 3}
    assert {r.subject for r in recs} == {"rafd:01", "rafd:02"}
    assert len(read_rafd(root, angles=["090", "045"], gazes=["frontal", "left"])) == 16


def test_cfee_manifest_and_folder_layouts(tmp_path):
    root = tmp_path / "CFEE"
    rows = [("img/s1_happy.png", "happy", "s1"), ("img/s1_sad.png", "Sadness", "s1"),
            ("img/s2_hs.png", "happily surprised", "s2"), ("img/s2_ne.png", "neutral", "s2")]
    for p, _, _ in rows:
        _img(root / p)
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "expression", "subject"), *rows])
    recs = read_cfee(root)                          # the compound expression is left out, not an error
    assert [(r.label, r.subject) for r in recs] == [(3, "cfee:s1"), (5, "cfee:s1"), (4, "cfee:s2")]
    folders = tmp_path / "CFEE2"
    for name in ("happy", "surprised", "angrily_surprised"):
        _img(folders / name / "subj7_01.png")
    recs = read_cfee(folders)
    assert sorted(r.label for r in recs) == [3, 6] and {r.subject for r in recs} == {"cfee:subj7"}


def test_manifest_errors_name_the_problem(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("file,label\nx.png,happy\n")
    with pytest.raises(DatasetError, match="needs columns path,expression"):
        read_manifest(m)
    _img(tmp_path / "a.png")
    m.write_text("path,expression\na.png,smirk\nmissing.png,happy\n")
    with pytest.raises(DatasetError, match=r"2 file\(s\)"):
        read_manifest(m)


def test_authors_folder_layout_and_layout_that_matches_nothing(tmp_path):
    for code in FOLDER_CODES:
        _img(tmp_path / "ok" / code / f"p1_{code}.png")
    recs = read_expression_folders(tmp_path / "ok")
    assert sorted(r.label for r in recs) == list(range(7))
    _img(tmp_path / "bad" / "holidays" / "a.png")
    with pytest.raises(DatasetError, match="no expression folders"):
        read_expression_folders(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable"):
        read_expression_folders(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        read_kdef(tmp_path / "nope")
    with pytest.raises(DatasetError, match="not kind:path"):
        read_source("/data/KDEF")


def test_corrupt_jpeg_gets_one_clear_line(tmp_path):
    for code in FOLDER_CODES[:2]:
        _img(tmp_path / "d" / code / f"p1_{code}.jpg")
    bad = tmp_path / "d" / "HAS" / "p2_HAS.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    recs = read_expression_folders(tmp_path / "d")
    with pytest.raises(DatasetError, match=r"cannot read image .*p2_HAS.jpg.*--skip-bad"):
        build_cache(recs, 32, tmp_path / "cache", progress=False)
    images, labels, kept = build_cache(recs, 32, tmp_path / "cache", skip_bad=True, progress=False)
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8 and len(kept) == 2


def test_cache_is_reused_and_centre_crops(tmp_path):
    p = _img(tmp_path / "f" / "HAS" / "p1_HAS.png", size=(60, 100))
    arr = np.array(Image.open(p))
    arr[:20] = 0                                     # top band outside the centred square
    Image.fromarray(arr).save(p)
    recs = read_expression_folders(tmp_path / "f")
    a, _, _ = build_cache(recs, 30, tmp_path / "c", progress=False)
    assert int(a.min()) == 128                        # the cropped-away band never reaches the cache
    files = list((tmp_path / "c").glob("*.pt"))
    b, _, _ = build_cache(recs, 30, tmp_path / "c", progress=False)
    assert list((tmp_path / "c").glob("*.pt")) == files and torch.equal(a, b)


def test_split_is_subject_disjoint_and_recorded(tmp_path):
    cfg = preset("tiny")
    cfg.data.cache_dir = str(tmp_path)
    cfg.data.test_fraction = 0.25
    data = load_data(cfg.data, 32, split_file=tmp_path / "split.json", progress=False)
    train = {data.records[i].subject for i in data.train_idx}
    test = {data.records[i].subject for i in data.test_idx}
    assert train and test and not (train & test)
    recorded = json.loads((tmp_path / "split.json").read_text())
    assert set(recorded["test_subjects"]) == test and recorded["n_test_images"] == len(data.test_idx)
    # every synthetic identity has all seven expressions, so each translation has a known target
    gt = data.ground_truth()
    assert all((s, k) in gt for s in test for k in range(7))


def test_split_keeps_every_source_in_the_test_set():
    recs = [Record(f"{s}{i}", 0, f"{s}:{i}", s) for s in ("kdef", "rafd") for i in range(20)]
    train, test = split_subjects(recs, 0.1, seed=3)
    assert {t.split(":")[0] for t in test} == {"kdef", "rafd"} and not train & test
    assert split_subjects(recs, 0.1, seed=3) == (train, test)


def test_synthetic_faces_are_deterministic_and_expressions_differ():
    a, b = np.asarray(render_face(3, "happy", seed=0)), np.asarray(render_face(3, "happy", seed=0))
    assert np.array_equal(a, b)
    faces = [np.asarray(render_face(3, e), dtype=float) for e in EXPRESSIONS]
    for i in range(7):
        for j in range(i + 1, 7):
            assert np.abs(faces[i] - faces[j]).mean() > 0.3, (EXPRESSIONS[i], EXPRESSIONS[j])
    # identity lives outside the expression: the background and skin of a person never change
    assert identity_params(3) == identity_params(3) and identity_params(3) != identity_params(4)
    assert (faces[0][:4, :4] == faces[3][:4, :4]).all()


def _numbered(n: int, train_idx) -> FaceData:
    """Face i is a flat image of value i, so a batch says which faces it holds, flipped or not."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    records = [Record(f"/x/{i}.png", i % 7, f"s{i}", "synthetic") for i in range(n)]
    return FaceData(images, torch.zeros(n, dtype=torch.int64), records, torch.as_tensor(train_idx), torch.arange(0))


@pytest.mark.parametrize("world", [2, 3])
def test_shards_partition_every_epoch_when_ranks_hold_different_numbers_of_batches(world):
    split = list(range(0, 2 * (3 * world + 1), 2))          # 3 * world + 1 faces: the first shard holds one more
    data = _numbered(len(split) * 2, split)
    streams = [data.batches("train", batch_size=1, seed=5, rank=r, world_size=world) for r in range(world)]
    sizes = [len(split[r::world]) for r in range(world)]
    assert len(set(sizes)) == 2
    orders = []
    for epoch in range(4):
        shards = [[round(float(next(s)[0].add(1).mul(127.5).flatten()[0])) for _ in range(k)]
                  for s, k in zip(streams, sizes)]
        seen = [i for shard in shards for i in shard]
        assert sorted(seen) == split, (epoch, shards)   # disjoint, and together the whole split
        orders.append(seen)
    assert len({tuple(o) for o in orders}) == 4              # and reshuffled every epoch


def _synthetic_split(tmp_path):
    cfg = preset("tiny")
    cfg.data.cache_dir = str(tmp_path)
    cfg.data.test_fraction = 0.5                             # 6 test subjects, stored afraid first
    return load_data(cfg.data, 32, progress=False)


def test_grid_and_validation_faces_cover_every_source_expression(tmp_path):
    from usgan.metrics.validation import Validator
    from usgan.run_outputs import grid_faces

    data = _synthetic_split(tmp_path)
    subjects = {data.records[i].subject for i in data.test_idx.tolist()}
    grid, val = grid_faces(data).tolist(), Validator({}).faces(data).tolist()
    assert len(grid) == 7 and len(val) == 21 and set(val) <= set(data.test_idx.tolist())
    assert [data.records[i].label for i in grid] == list(range(7))      # one row per expression, in label order
    assert sorted(data.records[i].label for i in val) == sorted(list(range(7)) * 3)
    assert {data.records[i].subject for i in grid} == subjects            # six people, not one
    assert grid_faces(data).tolist() == grid                               # the same faces every call


def test_picked_faces_spread_over_subjects_and_the_whole_split_keeps_its_order():
    records = [Record(f"/x/{i}", i // 4, f"s{i % 4}", "kdef") for i in range(28)]   # 7 expressions x 4 subjects
    data = FaceData(torch.zeros(28, 3, 1, 1, dtype=torch.uint8), torch.zeros(28, dtype=torch.int64), records,
                    torch.arange(0), torch.arange(28))
    picked = data.pick_faces("test", 14).tolist()
    by_subject = [sum(records[i].subject == f"s{k}" for i in picked) for k in range(4)]
    assert sorted(by_subject) == [3, 3, 4, 4]
    assert data.pick_faces("test", 14, seed=1).tolist() != picked
    assert data.pick_faces("test").tolist() == list(range(28)) == data.pick_faces("test", 99).tolist()
