"""Simulated studies with known truth: the estimates land near it and the 95 % intervals cover it 90-98 % of the time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.preferences import build_report, preference_table
from analysis.simulate import METHODS, PAPER_TRUTH, choice_probabilities, population_truth, simulate_study
from analysis.stats import cluster_bootstrap, preference_shares, question_tests

N_STUDIES = 200


def test_simulator_population_probability_is_the_stated_truth():
    # The truth the intervals are judged against is the mean vote probability over participants and items drawn
    # from the population; average the simulator's own probabilities over many draws of both.
    rng = np.random.default_rng(0)
    means = [choice_probabilities(rng, 300, 300, PAPER_TRUTH, len(METHODS)).mean(axis=(0, 1)) for _ in range(20)]
    expected = np.array([PAPER_TRUTH[q] for q in PAPER_TRUTH])
    np.testing.assert_allclose(np.mean(means, axis=0), expected, atol=0.004)
    # Single items do differ (that is why votes cluster): the spread of item means is far above binomial noise.
    probs = choice_probabilities(rng, 80, 200, PAPER_TRUTH, len(METHODS))
    assert probs.mean(axis=0).std(axis=0).min() > 0.03


def test_a_large_study_lands_near_the_truth():
    votes = simulate_study(n_participants=300, n_items=120, seed=123)
    table = preference_table(votes, n_boot=500, seed=0).merge(population_truth(), on=["question", "method"])
    assert (table["percent"] - table["truth"]).abs().max() < 3.0
    assert ((table["ci_low"] <= table["truth"]) & (table["truth"] <= table["ci_high"])).mean() >= 10 / 12


@pytest.fixture(scope="module")
def coverage_runs() -> pd.DataFrame:
    """The paper's design (80 participants x 18 items x 3 questions), N_STUDIES times, 500 resamples each."""
    truth = population_truth()
    methods, questions = list(METHODS), list(PAPER_TRUTH)
    frames = []
    for study in range(N_STUDIES):
        # No catch rows, so the votes go straight to the estimator preference_table runs after its exclusions.
        votes = simulate_study(n_participants=80, n_items=18, seed=10_000 + study, n_catch=0)
        boot = cluster_bootstrap(votes, methods, questions, n_boot=500, seed=study)
        table = preference_shares(votes, methods, questions, boot)
        frames.append(table.merge(truth, on=["question", "method"]).assign(study=study))
    runs = pd.concat(frames, ignore_index=True)
    return runs.assign(covered=(runs["ci_low"] <= runs["truth"]) & (runs["truth"] <= runs["ci_high"]))


def test_estimates_are_unbiased_across_studies(coverage_runs):
    bias = coverage_runs.groupby(["question", "method"]).apply(lambda d: (d["percent"] - d["truth"]).mean())
    assert bias.abs().max() < 1.0  # percentage points; the spread of one study is about 3


def test_bootstrap_intervals_cover_the_truth_90_to_98_percent(coverage_runs):
    rate = coverage_runs["covered"].mean()
    print(f"coverage over {N_STUDIES} studies x 12 intervals: {rate:.4f}")
    assert 0.90 <= rate <= 0.98
    per_cell = coverage_runs.groupby(["question", "method"])["covered"].mean()
    assert per_cell.min() >= 0.88  # no single method or question badly off


def test_wilson_intervals_undercover_clustered_votes(coverage_runs):
    wilson = ((coverage_runs["wilson_low"] <= coverage_runs["truth"])
              & (coverage_runs["truth"] <= coverage_runs["wilson_high"])).mean()
    assert wilson < 0.8  # why the headline interval is the cluster bootstrap


def test_rao_scott_chi_square_holds_its_level_where_the_plain_one_does_not():
    uniform = {"realism": (0.25, 0.25, 0.25, 0.25)}
    plain, corrected = [], []
    for study in range(100):
        votes = simulate_study(n_participants=40, n_items=12, truth=uniform, n_catch=0, seed=study)
        boot = cluster_bootstrap(votes, list(METHODS), ["realism"], n_boot=300, seed=study)
        row = question_tests(votes, list(METHODS), ["realism"], boot).iloc[0]
        plain.append(row["chi2_p"] < 0.05)
        corrected.append(row["chi2_p_rao_scott"] < 0.05)
    assert np.mean(plain) > 0.25      # independent-votes p-values are far too small under clustering
    assert np.mean(corrected) <= 0.08


def test_random_clickers_are_excluded_and_bias_is_removed():
    votes = simulate_study(n_participants=80, n_items=18, n_catch=4, inattentive_fraction=0.3, seed=77)
    report = build_report(votes, n_boot=300)
    assert report.meta["participants_excluded"] >= 15
    with_clickers = build_report(votes, max_failed_catch=0, n_boot=300).preferences
    kept = report.preferences.merge(population_truth(), on=["question", "method"])
    everyone = with_clickers.merge(population_truth(), on=["question", "method"])
    # Random clickers pull every share towards 25 %; excluding them moves the estimates back towards the truth.
    assert (kept["percent"] - kept["truth"]).abs().mean() < (everyone["percent"] - everyone["truth"]).abs().mean()
