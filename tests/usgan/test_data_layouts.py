"""The datasets as distributed (CFEE's release with and without its summary sheet, KDEF_and_AKDEF, RaFD with its
three gazes, the authors' AFS/... layout) read with true labels and subjects; numbers never become labels; the
data check reports it all, and training runs on every layout."""
import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.usgan.data_fixtures import SIZE, _save, authors_layout, cfee_release, every_layout, kdef_and_akdef
from usgan.config import preset
from usgan.data import load_data
from usgan.data.cfee import COMPOUND, PUBLISHED, SUMMARY_XLS, categories, read_cfee
from usgan.data.expressions import EXPRESSIONS
from usgan.data.readers import read_expression_folders, read_kdef, read_manifest
from usgan.data.sources import read_source
from usgan.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    return every_layout(tmp_path_factory.mktemp("layouts"))


def _cfg(specs, cache):
    cfg = preset("tiny")
    cfg.data.sources, cfg.data.cache_dir = list(specs), str(cache)
    return cfg


def test_every_layout_reads_true_labels_and_people(trees, tmp_path):
    data = load_data(_cfg([t.spec for t in trees], tmp_path).data, SIZE, progress=False)
    assert [log.spec for log in data.sources] == [t.spec for t in trees]
    for t, log in zip(trees, data.sources):
        assert {r.path for r in log.records} == set(t.truth), t.spec          # exactly the files to train on
        assert all(EXPRESSIONS[r.label] == t.truth[r.path][1] for r in log.records), t.spec
        people, names = defaultdict(set), defaultdict(set)
        for r in log.records:
            people[r.subject].add(t.truth[r.path][0])
            names[t.truth[r.path][0]].add(r.subject)
        assert len(people) == t.subjects, t.spec
        # One subject is one person and one person one subject; where names say nothing, every image stands alone.
        assert all(len(v) == 1 for v in people.values()) and all(len(v) == 1 for v in names.values()), t.spec


def test_check_json_reports_counts_labels_subjects_and_a_contact_sheet(trees, tmp_path):
    cmd = [sys.executable, "-m", "usgan.data", "check", "--preset", "tiny", "--json", "--out", str(tmp_path / "out"),
           "--set", f"data.cache_dir={tmp_path / 'cache'}"] + [a for t in trees for a in ("--data", t.spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["ok"] and not report["problems"] and report["total"]["test_images"] > 0
    for t, s in zip(trees, report["sources"]):
        want = {e: sum(v[1] == e for v in t.truth.values()) for e in EXPRESSIONS}
        assert (s["spec"], s["images"], s["expressions"], s["subjects"]) == (t.spec, t.images, want, t.subjects)
        assert s["train"]["images"] + s["test"]["images"] == t.images
        assert t.labels_from in s["labels_from"] and s["subject_disjoint"] is t.subject_disjoint
        for fragment, count in t.skipped.items():
            assert [g["count"] for why, g in s["skipped"].items() if fragment in why] == [count], (t.spec, s["skipped"])
        assert sum(g["count"] for g in s["skipped"].values()) == sum(t.skipped.values()), (t.spec, s["skipped"])
    assert any("by image, not by person" in w for w in report["warnings"])      # the authors' layout says so
    sheet = report["contact_sheet"]
    assert Path(sheet["path"]).is_file() and len(sheet["cells"]) == 7 * len(trees)
    truth = {p: v for t in trees for p, v in t.truth.items()}
    assert all(truth[c["file"]][1] == c["expression"] for c in sheet["cells"])


def test_cfee_names_come_from_the_summary_sheet_when_present(tmp_path):
    swapped = {i + 1: n for i, n in enumerate(PUBLISHED)}
    swapped[3], swapped[4] = "fearful", "sad"                 # a sheet that disagrees with the paper's order
    tree = cfee_release(tmp_path / "a", subjects=(5, 6), sheet=swapped)
    recs = read_cfee(tree.spec.split(":", 1)[1])
    assert all(EXPRESSIONS[r.label] == tree.truth[r.path][1] for r in recs) and len(recs) == 14
    assert {EXPRESSIONS[r.label] for r in recs if Path(r.path).name.startswith("03_")} == {"afraid"}
    (Path(tree.spec.split(":", 1)[1]) / SUMMARY_XLS).unlink()   # without it: the published order, and said so
    recs = read_cfee(tree.spec.split(":", 1)[1])
    assert {EXPRESSIONS[r.label] for r in recs if Path(r.path).name.startswith("03_")} == {"sad"}


def _sheet(root: Path, rows) -> Path:
    import xlwt
    book = xlwt.Workbook()
    sheet = book.add_sheet("summary")
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            sheet.write(r, c, v)
    root.mkdir(parents=True, exist_ok=True)
    book.save(str(root / SUMMARY_XLS))
    return root


def test_summary_sheet_without_numbers_only_confirms_the_published_order(tmp_path):
    # An AU table that leaves out neutral must not shift happy onto code 01.
    ok = categories(_sheet(tmp_path / "ok", [["Expression", "AUs"], ["Happy", 12], ["Sad", 4], ["Awed", 1]]))
    assert ok.label(1) == (EXPRESSIONS.index("neutral"), "") and ok.label(2)[0] == EXPRESSIONS.index("happy")
    assert "follows" in ok.source
    with pytest.raises(DatasetError, match="another order"):
        categories(_sheet(tmp_path / "bad", [["Sad"], ["Happy"]]))
    with pytest.raises(DatasetError, match="category 02 twice"):
        categories(_sheet(tmp_path / "twice", [[2, "Happy"], [2, "Sad"]]))
    inline = categories(_sheet(tmp_path / "inline", [["3. Sadness"], ["4 - Fear"]]))
    assert inline.label(3)[0] == EXPRESSIONS.index("sad") and inline.label(4)[0] == EXPRESSIONS.index("afraid")
    empty = categories(_sheet(tmp_path / "empty", [["nothing here"]]))
    assert "published order" in empty.source and "names no category" in empty.source
    assert empty.label(8) == (None, COMPOUND)


def test_cfee_codes_in_a_manifest_are_read_as_cfee_or_refused_in_one_line(tmp_path):
    rows = [("a.jpg", "01", "126"), ("b.jpg", "02", "126"), ("c.jpg", "08", "110"), ("d.jpg", "07", "110")]
    for p, code, s in rows:
        _save(tmp_path / p, int(s), "neutral")
    with open(tmp_path / "codes.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "expression", "subject"), *rows])
    with pytest.raises(DatasetError, match=r"by number \('01'\).*cfee:PATH") as e:
        read_source(f"manifest:{tmp_path / 'codes.csv'}")
    assert "\n" not in str(e.value)
    with pytest.raises(DatasetError, match="by number"):
        read_manifest(tmp_path / "codes.csv", skip_bad=True)          # --skip-bad never turns numbers into labels
    recs = read_source(f"cfee:{tmp_path / 'codes.csv'}")
    assert [(Path(r.path).name, EXPRESSIONS[r.label], r.subject) for r in recs] == [
        ("a.jpg", "neutral", "cfee:126"), ("b.jpg", "happy", "cfee:126"), ("d.jpg", "disgusted", "cfee:110")]
    (tmp_path / "codes.csv").rename(tmp_path / "manifest.csv")
    assert read_cfee(tmp_path) == recs


def test_numbered_folders_and_resorted_cfee_files(tmp_path):
    for code, s, serial in [(1, 126, 11), (2, 126, 12), (2, 110, 13), (9, 110, 14)]:
        _save(tmp_path / "coded" / f"{code:02d}" / f"{code:02d}_{s:03d}_{serial}.jpg", s, "neutral")
    with pytest.raises(DatasetError, match=r"folder 01/\) names expressions by number"):
        read_expression_folders(tmp_path / "coded")
    recs = read_cfee(tmp_path / "coded")
    assert sorted((EXPRESSIONS[r.label], r.subject) for r in recs) == [
        ("happy", "cfee:110"), ("happy", "cfee:126"), ("neutral", "cfee:126")]
    # Re-sorted into expression folders: the person is the file name's SSS, never its category code.
    for expr, code, s in [("happy", 2, 126), ("happy", 2, 110), ("sad", 3, 126)]:
        _save(tmp_path / "sorted" / expr / f"{code:02d}_{s:03d}_3963.jpg", s, expr)
    assert {r.subject for r in read_cfee(tmp_path / "sorted")} == {"cfee:126", "cfee:110"}


def test_kdef_release_root_needs_no_skip_bad_and_counts_akdef(tmp_path):
    tree = kdef_and_akdef(tmp_path)
    from usgan.data.readers import ReadLog
    log = ReadLog(tree.spec)
    recs = read_kdef(tree.spec.split(":", 1)[1], log=log)
    assert len(recs) == tree.images and len(log.skipped["AKDEF: averaged faces, not KDEF's photographs"]) == 14
    with pytest.raises(DatasetError, match="no usable KDEF images"):
        read_kdef(Path(tree.spec.split(":", 1)[1]) / "AKDEF", skip_bad=True)


def test_authors_layout_never_makes_one_person_of_a_file_number(tmp_path):
    tree = authors_layout(tmp_path, per_folder=2)
    recs = read_source(tree.spec)
    assert len({r.subject for r in recs}) == 14 and "folder:AFS/1" in {r.subject for r in recs}


def test_check_reports_a_source_that_yields_nothing_and_exits_1(trees, tmp_path, capsys):
    from usgan.data.check import main
    code = main(["check", "--preset", "tiny", "--json", "--out", str(tmp_path), "--data", trees[-1].spec,
                 "--data", f"kdef:{tmp_path / 'missing'}", "--set", f"data.cache_dir={tmp_path / 'cache'}"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["ok"] and report["sources"][0]["images"] == trees[-1].images
    assert report["problems"] == [f"kdef:{tmp_path / 'missing'}: " + report["sources"][1]["error"]]
    assert "does not exist" in report["sources"][1]["error"]


def test_training_stops_in_one_line_when_a_source_yields_nothing(trees, tmp_path, capsys):
    from usgan.train import main
    akdef_only = tmp_path / "akdef_only"
    kdef_root = Path(trees[2].spec.split(":", 1)[1])
    (akdef_only / "AKDEF").mkdir(parents=True)
    for p in (kdef_root / "AKDEF").iterdir():
        (akdef_only / "AKDEF" / p.name).write_bytes(p.read_bytes())
    (akdef_only / "KDEF").mkdir()
    common = ["--preset", "tiny", "--storage", str(tmp_path / "runs"), "--set", f"data.cache_dir={tmp_path / 'c'}"]
    assert main([*common, "--data", f"kdef:{akdef_only}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no usable KDEF images") and "\n" not in err
    # Every file unreadable and --skip-bad: the reader yields files, decoding leaves none.
    for name in ("AFS", "HAS"):
        (tmp_path / "broken" / name).mkdir(parents=True)
        (tmp_path / "broken" / name / "id1_x.png").write_bytes(b"not a png")
    assert main([*common, "--skip-bad", "--data", "synthetic", "--data", f"folder:{tmp_path / 'broken'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]          # after the progress bars
    assert err == (f"error: folder:{tmp_path / 'broken'} yields no images (left out: 2 unreadable image "
                   "(--skip-bad)); check the path and the layout with usgan-data check")


@pytest.mark.slow
@pytest.mark.ray
def test_training_runs_on_every_layout_at_once(trees, tmp_path):
    cmd = [sys.executable, "-m", "usgan.train", "--preset", "tiny", "--iters", "2", "--name", "layouts",
           "--storage", str(tmp_path / "runs"), "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    proc = subprocess.run(cmd + [a for t in trees for a in ("--data", t.spec)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    run = tmp_path / "runs" / "layouts"
    report = json.loads((run / "data_check.json").read_text())
    assert [(s["spec"], s["images"]) for s in report["sources"]] == [(t.spec, t.images) for t in trees]
    assert all(f"[data] {t.spec}: {t.images} images" in proc.stdout for t in trees)
    assert list(run.glob("checkpoint_*/2-G.ckpt"))
