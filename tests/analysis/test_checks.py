"""The study's own exclusion rule by default, a visible override, speeders, contrasts, the position check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.checks import contrasts, position_bias
from analysis.preferences import build_report, format_text
from analysis.simulate import METHODS, simulate_study
from analysis.stats import cluster_bootstrap, holm
from analysis.votes import VoteDataError, apply_exclusions, validate

from .analysis_helpers import make_study_db, run_cli


def one_failure_each(votes: pd.DataFrame, participants: list[str]) -> pd.DataFrame:
    """Make exactly one catch trial of each named participant a failure, and every other catch a pass."""
    votes = votes.copy()
    catch = votes["is_catch"] == 1
    votes.loc[catch, ["catch_passed", "method"]] = [1, "catch_correct"]
    first = votes[catch & votes["participant_id"].isin(participants)].groupby("participant_id").head(1).index
    votes.loc[first, ["catch_passed", "method"]] = [0, "US-GAN"]
    return votes


@pytest.fixture(scope="module")
def votes_rule_one() -> pd.DataFrame:
    """A study whose own rule excludes at 1 failed check; P000 and P001 fail one check each."""
    votes = simulate_study(n_participants=12, n_items=6, n_catch=2, seed=3)
    return one_failure_each(votes, ["P000", "P001"]).assign(exclude_after_failed_checks=1)


def test_the_study_rule_travels_with_the_votes_and_is_the_default(votes_rule_one):
    report = build_report(votes_rule_one, n_boot=100)
    out = set(report.participants.loc[report.participants["excluded"], "participant_id"])
    assert out == {"P000", "P001"}
    assert "failed >= 1 catch trials (the study's rule)" in format_text(report)
    # Without the column, the old default of 2 applies and says so.
    plain = build_report(votes_rule_one.drop(columns="exclude_after_failed_checks"), n_boot=100)
    assert not plain.participants["excluded"].any()
    assert "votes carry no rule" in plain.meta["exclusion_rule"]


def test_an_override_is_applied_and_named(votes_rule_one):
    report = build_report(votes_rule_one, max_failed_catch=2, n_boot=100)
    assert not report.participants["excluded"].any()
    assert "--max-failed-catch, overriding the study's 1" in format_text(report)
    off = build_report(votes_rule_one, max_failed_catch=0, n_boot=100)
    assert "catch trials not used" in off.meta["exclusion_rule"] and not off.participants["excluded"].any()


def test_two_rules_in_one_table_are_refused(votes_rule_one):
    other = votes_rule_one.assign(study_id="other", exclude_after_failed_checks=2)
    with pytest.raises(VoteDataError, match="different exclusion rules"):
        build_report(pd.concat([votes_rule_one, other]), n_boot=50)


def test_cli_default_reads_the_rule_from_the_database(tmp_path, votes_rule_one):
    db = make_study_db(tmp_path / "s.sqlite", votes_rule_one.drop(columns="exclude_after_failed_checks"))
    default = run_cli("--db", str(db), "--n-boot", "100")
    assert "rule: failed >= 2 catch trials (default" in default.stdout  # this view carries no rule
    csv = tmp_path / "votes.csv"
    votes_rule_one.to_csv(csv, index=False)
    ruled = run_cli("--csv", str(csv), "--n-boot", "100")
    assert ruled.returncode == 0, ruled.stderr
    assert "analysed of 12 (2 excluded" in ruled.stdout and "(the study's rule)" in ruled.stdout
    overridden = run_cli("--csv", str(csv), "--n-boot", "100", "--max-failed-catch", "2")
    assert "analysed of 12 (0 excluded" in overridden.stdout and "overriding the study's 1" in overridden.stdout


def test_speeders_are_excluded_by_median_response_time():
    votes = validate(simulate_study(n_participants=10, n_items=6, seed=5))
    votes.loc[votes["participant_id"] == "P003", "response_ms"] = 300
    _, people, _ = apply_exclusions(votes, 0, min_median_ms=1000)
    assert list(people.loc[people["excluded"], "participant_id"]) == ["P003"]
    assert people.set_index("participant_id").loc["P003", "reason"] == "median response under 1000 ms"
    report = build_report(votes, max_failed_catch=0, min_median_ms=1000, n_boot=100)
    assert report.meta["excluded_speeders"] == 1 and "speeders" in format_text(report)


def test_contrasts_one_method_against_each_other_with_holm_over_all():
    votes = validate(simulate_study(n_participants=30, n_items=8, seed=8))
    kept, _, _ = apply_exclusions(votes)
    questions = ["realism", "expression", "identity"]
    boot = cluster_bootstrap(kept, list(METHODS), questions, n_boot=400, seed=1)
    table = contrasts(kept, list(METHODS), questions, boot, "US-GAN")
    assert len(table) == 3 * 3 and set(table["versus"]) == {"StarGAN", "STGAN", "GANimation"}
    np.testing.assert_allclose(table["p_boot_holm"], holm(table["p_boot"].to_numpy(float)))
    row = table[(table["question"] == "realism") & (table["versus"] == "STGAN")].iloc[0]
    counts = kept[kept["question"] == "realism"]["method"].value_counts()
    assert row["diff"] == pytest.approx(100 * (counts["US-GAN"] - counts["STGAN"]) / counts.sum())
    assert row["diff_low"] <= row["diff"] <= row["diff_high"]
    # The simulated truth has US-GAN well ahead of STGAN: a clear difference even after Holm.
    assert row["p_boot_holm"] < 0.05
    with pytest.raises(VoteDataError, match="not a method"):
        contrasts(kept, list(METHODS), questions, boot, "Nope")


def test_bootstrap_p_values_follow_the_number_of_resamples():
    votes = simulate_study(n_participants=30, n_items=8, seed=8)
    text = format_text(build_report(votes, contrast="US-GAN", n_boot=99))
    title = "Pre-specified contrasts: US-GAN against each other method (Holm across all 9)"
    section = text[text.index(title):].split("\n\n")[0]
    # 2 * (0 + 1) / (99 + 1): the smallest p that 99 resamples can give, never "<1e-4".
    assert "<1e-4" not in section and "0.0200" in section


def test_position_bias_is_found_when_participants_favour_the_first_image():
    votes = validate(simulate_study(n_participants=20, n_items=6, seed=9))
    kept, _, _ = apply_exclusions(votes)
    fair = position_bias(kept, ["realism"]).iloc[0]
    assert fair["p"] > 0.01
    biased = kept.copy()
    biased.loc[biased.index[::2], "position"] = 0  # half the answers moved to the first image
    row = position_bias(biased, ["realism"]).iloc[0]
    assert row["pos1_pct"] > 50 and row["p"] < 1e-6
    assert "Screen positions chosen" in format_text(build_report(votes, n_boot=50))
