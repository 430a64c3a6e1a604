"""The command `python analysis/preferences.py` run as a user runs it: real SQLite files and CSVs, subprocesses."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from io import StringIO

import pandas as pd
import pytest

from analysis.simulate import METHODS, simulate_study

from .analysis_helpers import ROOT, make_study_db, one_clear_line, run_cli


@pytest.fixture(scope="module")
def study_votes() -> pd.DataFrame:
    """A small simulated study with catch trials and two random clickers."""
    return simulate_study(n_participants=24, n_items=8, inattentive_fraction=0.1, seed=11)


def test_bare_command_reads_the_default_database(tmp_path, study_votes):
    db = make_study_db(tmp_path / "study.sqlite", study_votes, methods={"sim": list(METHODS)})
    result = run_cli("--n-boot", "300", env={"USGAN_STUDY_DB": str(db)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"source: {db} (study sim)" in out
    assert "two-way cluster bootstrap" in out and "Wilson" in out
    for question in ("realism", "expression", "identity"):
        assert question in out
    # The database's method order (the methods view) is the report's order.
    assert out.index("StarGAN") < out.index("STGAN") < out.index("GANimation") < out.index("US-GAN")
    excluded = int(study_votes.query("is_catch == 1 and catch_passed == 0").groupby("participant_id").size()
                   .ge(2).sum())
    assert f"analysed of 24 ({excluded} excluded" in out


def test_every_format_parses_and_out_writes_report_and_chart(tmp_path, study_votes):
    csv_path = tmp_path / "votes.csv"
    study_votes.to_csv(csv_path, index=False)
    out_dir = tmp_path / "report"
    as_json = run_cli("--csv", str(csv_path), "--n-boot", "200", "--format", "json", "--out", str(out_dir))
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)  # stdout stays pure JSON; the 'wrote' line goes to stderr
    assert doc["meta"]["n_boot"] == 200 and doc["meta"]["votes"] == sum(r["votes"] for r in doc["preferences"])
    assert {r["question"] for r in doc["tests"]} == {"realism", "expression", "identity"}
    assert "wrote" in as_json.stderr
    for name in ("report.txt", "report.md", "report.json", "preferences.csv", "tests.csv", "items.csv",
                 "groups.csv", "participants.csv", "preferences.png", "preferences.svg"):
        assert (out_dir / name).stat().st_size > 0, name
    assert (out_dir / "preferences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out_dir / "preferences.svg").read_text()

    as_csv = run_cli("--csv", str(csv_path), "--n-boot", "200", "--format", "csv")
    table = pd.read_csv(StringIO(as_csv.stdout))
    assert list(table.columns[:5]) == ["question", "method", "votes", "n_votes", "percent"]
    assert table.groupby("question")["percent"].sum().round(6).eq(100).all()

    as_md = run_cli("--csv", str(csv_path), "--n-boot", "200", "--format", "markdown")
    assert as_md.returncode == 0 and "| Question | Method | Votes |" in as_md.stdout


def test_missing_database_gives_one_line_with_the_fix(tmp_path):
    line = one_clear_line(run_cli(env={"USGAN_STUDY_DB": str(tmp_path / "nothing.sqlite")}))
    assert "no study database at" in line and "--db" in line and "--csv" in line
    assert not (tmp_path / "nothing.sqlite").exists()  # reading never creates the app's database


def test_empty_database_says_no_votes_yet(tmp_path):
    db = make_study_db(tmp_path / "empty.sqlite")
    line = one_clear_line(run_cli("--db", str(db)))
    assert line == f"error: no votes yet in {db}; run a study first"


def test_database_without_the_view_is_named(tmp_path):
    db = tmp_path / "other.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    assert "no 'votes_long' view" in one_clear_line(run_cli("--db", str(db)))


def test_csv_missing_a_column_names_it(tmp_path, study_votes):
    path = tmp_path / "votes.csv"
    study_votes.drop(columns=["method"]).to_csv(path, index=False)
    line = one_clear_line(run_cli("--csv", str(path)))
    assert "lacks the column method;" in line


def test_several_studies_need_a_choice_and_study_picks_one(tmp_path, study_votes):
    other = simulate_study(n_participants=6, n_items=4, seed=2, study_id="pilot")
    db = make_study_db(tmp_path / "two.sqlite", pd.concat([study_votes, other]))
    line = one_clear_line(run_cli("--db", str(db)))
    assert "2 studies (pilot, sim)" in line and "--study" in line
    picked = run_cli("--db", str(db), "--study", "pilot", "--n-boot", "100", "--format", "json")
    assert json.loads(picked.stdout)["meta"]["participants_total"] == 6


def test_a_method_nobody_chose_shows_zero_when_known(tmp_path, study_votes):
    path = tmp_path / "votes.csv"
    study_votes.to_csv(path, index=False)
    result = run_cli("--csv", str(path), "--n-boot", "100", "--format", "csv", "--methods", ",".join(METHODS) + ",Ours2")
    table = pd.read_csv(StringIO(result.stdout))
    ours = table[table["method"] == "Ours2"]
    assert len(ours) == 3 and (ours["votes"] == 0).all() and (ours["percent"] == 0).all()
    assert (ours["wilson_high"] > 0).all()  # no votes is still compatible with a small true share


def test_usage_errors_are_argparse_lines(tmp_path):
    result = run_cli("--n-boot", "0")
    assert result.returncode == 2 and "must be at least 1" in result.stderr and "Traceback" not in result.stderr


def test_package_imports_no_torch_usgan_or_study_app():
    code = ("import sys, analysis.preferences, analysis.stats, analysis.votes, analysis.simulate;"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'usgan', 'study_app', 'ray'});"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
