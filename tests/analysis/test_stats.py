"""The statistics on hand-made vote tables whose right answers are known."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from analysis.preferences import build_report, format_markdown, format_text, plot_preferences, preference_table
from analysis.simulate import simulate_study
from analysis.stats import cluster_bootstrap, fleiss_kappa_unequal, item_agreement, resampled_shares
from analysis.votes import VoteDataError, apply_exclusions, read_csv, read_db, validate

from .analysis_helpers import make_study_db


def votes_from(choices: dict[tuple[str, str], str], question: str = "realism") -> pd.DataFrame:
    """Long votes from {(participant, item): method}."""
    return pd.DataFrame([{"participant_id": p, "item_id": i, "question": question, "method": m}
                         for (p, i), m in choices.items()])


def test_vectorised_bootstrap_equals_resampling_rows_by_hand():
    votes = simulate_study(n_participants=7, n_items=5, seed=3, n_catch=0)
    votes = votes[votes["question"] == "realism"]
    methods = sorted(votes["method"].unique())
    participants, items = sorted(votes["participant_id"].unique()), sorted(votes["item_id"].unique())
    counts = np.zeros((7, 5, len(methods)))
    for row in votes.itertuples():
        counts[participants.index(row.participant_id), items.index(row.item_id), methods.index(row.method)] += 1
    rng = np.random.default_rng(0)
    for _ in range(5):
        pick_p, pick_i = rng.integers(0, 7, 7), rng.integers(0, 5, 5)
        # By hand: every drawn participant x drawn item cell, duplicates kept, then the share per method.
        rows = [votes[(votes["participant_id"] == participants[p]) & (votes["item_id"] == items[i])]
                for p in pick_p for i in pick_i]
        by_hand = pd.concat(rows)["method"].value_counts(normalize=True).reindex(methods, fill_value=0)
        w_p = np.bincount(pick_p, minlength=7)[None].astype(float)
        w_i = np.bincount(pick_i, minlength=5)[None].astype(float)
        np.testing.assert_allclose(resampled_shares(counts, w_p, w_i)[0], by_hand.to_numpy(), atol=1e-12)


def test_bootstrap_is_seeded_and_centred_on_the_estimate():
    votes = validate(simulate_study(n_participants=30, n_items=10, seed=5, n_catch=0))
    methods, questions = sorted(votes["method"].unique()), ["realism", "expression", "identity"]
    a = cluster_bootstrap(votes, methods, questions, n_boot=2000, seed=9)
    b = cluster_bootstrap(votes, methods, questions, n_boot=2000, seed=9)
    c = cluster_bootstrap(votes, methods, questions, n_boot=2000, seed=10)
    np.testing.assert_array_equal(a.shares["identity"], b.shares["identity"])
    assert not np.array_equal(a.shares["identity"], c.shares["identity"])
    observed = votes[votes["question"] == "identity"]["method"].value_counts(normalize=True).reindex(methods)
    se = a.shares["identity"].std(axis=0)
    assert np.all(np.abs(a.shares["identity"].mean(axis=0) - observed.to_numpy()) < 0.1 * se + 1e-3)
    np.testing.assert_allclose(a.shares["identity"].sum(axis=1), 1.0)


def test_bootstrap_in_chunks_matches_one_block(monkeypatch):
    votes = validate(simulate_study(n_participants=30, n_items=10, seed=12, n_catch=0))
    methods, questions = sorted(votes["method"].unique()), ["realism"]
    whole = cluster_bootstrap(votes, methods, questions, n_boot=3000, seed=1).shares["realism"]
    monkeypatch.setattr("analysis.stats._CHUNK_CELLS", 50 * 80)  # about 50 resamples per block
    chunked = cluster_bootstrap(votes, methods, questions, n_boot=3000, seed=1).shares["realism"]
    assert chunked.shape == whole.shape and np.isfinite(chunked).all()
    np.testing.assert_allclose(chunked.std(axis=0), whole.std(axis=0), rtol=0.1)
    np.testing.assert_allclose(chunked.mean(axis=0), whole.mean(axis=0), atol=0.005)


def test_clustered_votes_get_wider_intervals_than_wilson():
    table = preference_table(simulate_study(seed=21), n_boot=2000)
    boot_width = (table["ci_high"] - table["ci_low"]).mean()
    wilson_width = (table["wilson_high"] - table["wilson_low"]).mean()
    assert boot_width > 1.5 * wilson_width  # the heterogeneity the simulator puts in must show


def test_table_numbers_match_scipy_and_statsmodels():
    votes = simulate_study(n_participants=20, n_items=6, seed=8)
    report = build_report(votes, n_boot=500, seed=1)
    prefs, tests = report.preferences, report.tests
    kept = votes[votes["is_catch"] == 0]
    kept = kept[kept["participant_id"].isin(report.participants.query("not excluded")["participant_id"])]
    for question, sub in prefs.groupby("question"):
        counts = kept[kept["question"] == question]["method"].value_counts().reindex(sub["method"]).to_numpy()
        np.testing.assert_array_equal(sub["votes"].to_numpy(), counts)
        low, high = proportion_confint(counts, counts.sum(), alpha=0.05, method="wilson")
        np.testing.assert_allclose(sub["wilson_low"], 100 * low)
        np.testing.assert_allclose(sub["wilson_high"], 100 * high)
        row = tests.set_index("question").loc[question]
        assert row["chi2_p"] == pytest.approx(sps.chisquare(counts).pvalue)
        top = np.sort(counts)[::-1]
        assert row["binom_p"] == pytest.approx(sps.binomtest(int(top[0]), int(top[0] + top[1])).pvalue)
        assert row["best_votes"] == top[0] and row["second_votes"] == top[1]
    # Holm across the three questions: the smallest p times 3, adjusted p never below the raw one.
    raw = tests["binom_p"].to_numpy()
    assert tests["binom_p_holm"].min() == pytest.approx(min(1.0, 3 * raw.min()))
    assert (tests["binom_p_holm"] >= tests["binom_p"] - 1e-15).all()
    np.testing.assert_allclose(tests["diff_p_boot_holm"], multipletests(tests["diff_p_boot"], method="holm")[1])
    assert tests["diff_p_boot"].between(0, 1).all()


def test_fleiss_kappa_known_values():
    # Fleiss (1971) worked example as on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa = 0.210.
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa_unequal(table) == pytest.approx(fleiss_kappa(table), abs=1e-12)
    # Everyone agrees on each item, different items different winners: perfect agreement.
    agree = votes_from({(f"p{p}", f"i{i}"): "ABC"[i] for p in range(5) for i in range(3)})
    assert item_agreement(agree, ["A", "B", "C"])[0] == pytest.approx(1.0)
    # Unequal raters per item take the generalised formula and still find perfect agreement.
    uneven = agree[~((agree["participant_id"] == "p0") & (agree["item_id"] == "i1"))]
    kappa, n_items, lo, hi = item_agreement(uneven, ["A", "B", "C"])
    assert kappa == pytest.approx(1.0) and (n_items, lo, hi) == (3, 4, 5)


def test_a_method_nobody_chose_is_zero_with_a_wilson_interval():
    votes = votes_from({(f"p{p}", f"i{i}"): "AB"[(p + i) % 2] for p in range(6) for i in range(4)})
    table = preference_table(votes, methods=["A", "B", "C"], n_boot=300)
    c = table.set_index("method").loc["C"]
    assert c["votes"] == 0 and c["percent"] == 0 and c["ci_low"] == 0 and c["ci_high"] == 0
    assert 0 < c["wilson_high"] < 20
    report = build_report(votes, ["A", "B", "C"], n_boot=300)
    assert any("C got no votes" in note for note in report.meta["notes"])


def test_one_participant_gives_a_result_and_says_what_it_lacks():
    votes = votes_from({("solo", f"i{i}"): "ABCD"[i % 4] if i < 6 else "D" for i in range(10)})
    report = build_report(votes, n_boot=300)
    d = report.preferences.set_index("method").loc["D"]
    assert d["votes"] == 5 and d["percent"] == 50
    assert d["ci_low"] < 50 < d["ci_high"]  # items still vary
    assert np.isnan(report.tests["fleiss_kappa"].iloc[0])
    assert any("single participant" in note for note in report.meta["notes"])
    assert "n/a" in format_text(report)


def test_ties_for_best_are_reported_as_ties():
    votes = votes_from({(f"p{p}", f"i{i}"): "AABBC"[(p + i) % 5] for p in range(5) for i in range(5)})
    tests = build_report(votes, n_boot=300).tests.iloc[0]
    assert tests["tie"] and tests["tied_best"] == "A, B" and tests["binom_p"] == 1.0
    assert tests["diff"] == 0 and tests["diff_p_boot"] > 0.5  # resamples tip either way
    assert tests["best_votes"] == tests["second_votes"] == 10
    text = format_text(build_report(votes, n_boot=300))
    assert "A = B (tie)" in text and "tie for the most votes in realism: A, B" in text


def test_exclusions_follow_the_catch_rule_and_min_trials():
    votes = validate(simulate_study(n_participants=60, n_items=6, n_catch=4, inattentive_fraction=0.25, seed=4))
    failed = (votes[votes["is_catch"] == 1].assign(f=lambda d: d["catch_passed"] == 0)
              .groupby("participant_id")["f"].sum())
    kept, participants, repeats = apply_exclusions(votes, max_failed_catch=2)
    excluded = set(participants.loc[participants["excluded"], "participant_id"])
    assert excluded == set(failed[failed >= 2].index) and len(excluded) > 5
    assert not set(kept["participant_id"]) & excluded and (kept["is_catch"] == 0).all() and repeats == 0
    _, lenient, _ = apply_exclusions(votes, max_failed_catch=3)
    assert set(lenient.loc[lenient["excluded"], "participant_id"]) == set(failed[failed >= 3].index)
    _, off, _ = apply_exclusions(votes, max_failed_catch=0)
    assert not off["excluded"].any()
    # An incomplete participant: answered 2 of 6 items.
    partial = votes[~((votes["participant_id"] == "P000") & ~votes["item_id"].isin(["item00", "item01"]))]
    _, part, _ = apply_exclusions(partial, max_failed_catch=0, min_trials=6)
    assert set(part.loc[part["excluded"], "participant_id"]) == {"P000"}
    assert part.set_index("participant_id").loc["P000", "reason"] == "fewer than 6 trials"


def test_repeated_votes_keep_the_last_answer():
    votes = votes_from({("p1", "i1"): "A", ("p2", "i1"): "B"})
    again = pd.DataFrame([{"participant_id": "p1", "item_id": "i1", "question": "realism", "method": "B"}])
    votes = pd.concat([votes, again], ignore_index=True).assign(answered_at=["t1", "t1", "t2"])
    kept, _, repeats = apply_exclusions(validate(votes))
    assert repeats == 1 and kept.set_index("participant_id").loc["p1", "method"] == "B"


def test_everyone_excluded_is_one_clear_error():
    votes = simulate_study(n_participants=5, n_items=3, n_catch=3, inattentive_fraction=1.0, seed=1)
    votes.loc[votes["is_catch"] == 1, ["catch_passed", "method"]] = [0, "catch_wrong"]
    with pytest.raises(VoteDataError, match="no votes left .* all 5 participants excluded"):
        build_report(votes, n_boot=100)


def test_ids_from_sqlite_and_csv_read_the_same(tmp_path):
    votes = simulate_study(n_participants=10, n_items=4, seed=6)
    votes["participant_id"] = np.arange(len(votes)) % 10  # integer ids, as a database might hand them over
    db_votes, declared = read_db(make_study_db(tmp_path / "s.sqlite", votes))
    csv_path = tmp_path / "v.csv"
    votes.to_csv(csv_path, index=False)
    from_db = build_report(db_votes, n_boot=200).preferences
    from_csv = build_report(pd.read_csv(csv_path), n_boot=200).preferences
    pd.testing.assert_frame_equal(from_db, from_csv)
    assert declared == []


def test_item_and_group_breakdowns():
    votes = simulate_study(n_participants=12, n_items=6, seed=7)
    report = build_report(votes, n_boot=200)
    assert set(report.groups["item_group"]) == {"in", "out"}
    assert report.groups.groupby(["item_group", "question"])["percent"].sum().round(6).eq(100).all()
    per_item = report.items.groupby(["item_id", "question"])["votes"].sum()
    assert (per_item == report.meta["participants_analysed"]).all()  # every analysed participant rated every item
    assert "| Group | Question |" in format_markdown(report)
    untagged = build_report(votes.drop(columns=["item_group"]), n_boot=200)
    assert untagged.groups.empty and "By item group" not in format_text(untagged)


def test_plot_writes_png_and_svg_whatever_the_suffix(tmp_path):
    table = preference_table(simulate_study(n_participants=10, n_items=4, seed=2), n_boot=200)
    written = plot_preferences(table, tmp_path / "fig" / "prefs.png")
    assert [p.name for p in written] == ["prefs.png", "prefs.svg"]
    svg = (tmp_path / "fig" / "prefs.svg").read_text()
    assert all(word in svg for word in ("Realism", "Expression", "Identity"))


def test_header_only_csv_and_broken_files_are_clear_errors(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("participant_id,item_id,question,method\n")
    with pytest.raises(VoteDataError, match=r"^no votes yet in .*header.csv; run a study first$"):
        validate(read_csv(header), str(header))
    with pytest.raises(VoteDataError, match="is empty"):
        read_csv(_touch(tmp_path / "empty.csv"))
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(VoteDataError, match="not a readable SQLite database"):
        read_db(garbage)
    with pytest.raises(VoteDataError, match="no votes yet in the vote table"):
        preference_table(pd.DataFrame(columns=["participant_id", "item_id", "question", "method"]))


def test_method_list_comes_from_the_methods_view(tmp_path):
    votes = votes_from({("p1", "i1"): "B"})
    _, declared = read_db(make_study_db(tmp_path / "s.sqlite", votes, methods={"s1": ["A", "B", "C"]}))
    assert declared == [("s1", "A"), ("s1", "B"), ("s1", "C")]
    db = make_study_db(tmp_path / "t.sqlite", votes)
    con = sqlite3.connect(db)   # other tables are the app's business: only the contract's view declares methods
    con.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT, methods JSON)")
    con.execute("INSERT INTO studies (name, methods) VALUES ('s1', '[\"A\", \"B\", \"C\"]')")
    con.commit()
    con.close()
    assert read_db(db)[1] == []


def _touch(path):
    """An empty file."""
    path.write_bytes(b"")
    return path
