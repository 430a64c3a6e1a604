"""Simulated studies with known true preference probabilities, for tests and benchmarks.

    from analysis.simulate import simulate_study, PAPER_TRUTH
    votes = simulate_study(n_participants=80, n_items=18, seed=1)   # long vote format, catch trials included

Model: for question q, participant p and item i, the vote probabilities are the mixture
    w_pop * truth_q + w_part * theta_pq + w_item * phi_iq,   theta_pq ~ Dir(k_part * truth_q), phi_iq ~ Dir(k_item * truth_q)
Dirichlet draws have mean truth_q, so the population choice probability (averaged over participants and items
drawn from the population) is exactly truth_q, while single participants and items differ: votes cluster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHODS = ("StarGAN", "STGAN", "GANimation", "US-GAN")
QUESTIONS = ("realism", "expression", "identity")
# Plausible shares with US-GAN ahead, not the paper's: its study (arXiv 2112.13002, section 3.6) shows the
# shares only as the bar chart of Figure 9, and its abstract gives only US-GAN's gains over the second best.
PAPER_TRUTH = {
    "realism": (0.18, 0.14, 0.26, 0.42),
    "expression": (0.20, 0.12, 0.30, 0.38),
    "identity": (0.22, 0.16, 0.22, 0.40),
}
EXPRESSIONS = ("happy", "sad", "surprised", "angry", "fearful", "disgusted")


def simulate_study(
    n_participants: int = 80,
    n_items: int = 18,
    truth: dict[str, tuple[float, ...]] | None = None,
    methods: tuple[str, ...] = METHODS,
    weights: tuple[float, float, float] = (0.2, 0.3, 0.5),
    participant_concentration: float = 4.0,
    item_concentration: float = 3.0,
    n_catch: int = 3,
    inattentive_fraction: float = 0.0,
    seed: int | None = 0,
    study_id: str = "sim",
) -> pd.DataFrame:
    """One simulated study in the long vote format; every participant answers every item and question."""
    truth = PAPER_TRUTH if truth is None else truth
    rng = np.random.default_rng(seed)
    questions = list(truth)
    n_m, n_p, n_i, n_q = len(methods), n_participants, n_items, len(questions)
    prob = choice_probabilities(rng, n_p, n_i, truth, n_m, weights, participant_concentration, item_concentration)
    inattentive = rng.random(n_p) < inattentive_fraction
    prob[inattentive] = 1.0 / n_m                                         # random clickers ignore the images
    choice = _categorical(rng, prob)                                      # (P, I, Q)

    layout = np.argsort(rng.random((n_p, n_i, n_m)), axis=-1)             # layout[p, i, pos] = method shown there
    position_of = np.argsort(layout, axis=-1)                             # position_of[p, i, m]
    p_ix, i_ix, q_ix = np.meshgrid(np.arange(n_p), np.arange(n_i), np.arange(n_q), indexing="ij")
    position = np.take_along_axis(position_of[:, :, None, :], choice[..., None], axis=-1)[..., 0]

    trial_order = np.argsort(rng.random((n_p, n_i)), axis=1)              # order[p, t] = item in trial t
    trial_of = np.argsort(trial_order, axis=1)
    start = np.datetime64("2024-05-01T09:00:00", "ms") + (np.arange(n_p) * 420_000).astype("timedelta64[ms]")
    shown = start[:, None] + (trial_of * 25_000).astype("timedelta64[ms]")
    response = np.round(rng.lognormal(np.log(3500), 0.5, size=(n_p, n_i, n_q)))
    answered = shown[:, :, None] + np.cumsum(response, axis=2).astype("timedelta64[ms]")

    items = np.array([f"item{i:02d}" for i in range(n_i)], dtype=object)
    votes = pd.DataFrame({
        "participant_id": np.array([f"P{p:03d}" for p in range(n_p)], dtype=object)[p_ix.ravel()],
        "study_id": study_id,
        "item_id": items[i_ix.ravel()],
        "face_id": np.array([f"face{i // 3:02d}" for i in range(n_i)], dtype=object)[i_ix.ravel()],
        "expression": np.array([EXPRESSIONS[i % 3] for i in range(n_i)], dtype=object)[i_ix.ravel()],
        "item_group": np.where(i_ix.ravel() < (n_i + 1) // 2, "in", "out"),
        "question": np.array(questions, dtype=object)[q_ix.ravel()],
        "method": np.array(methods, dtype=object)[choice.ravel()],
        "position": position.ravel(),
        "is_catch": 0,
        "catch_passed": np.nan,
        "response_ms": response.ravel(),
        "shown_at": _iso(np.broadcast_to(shown[:, :, None], (n_p, n_i, n_q)).ravel()),
        "answered_at": _iso(answered.ravel()),
    })
    if n_catch:
        votes = pd.concat([votes, _catch_rows(rng, n_p, n_catch, n_m, inattentive, start, study_id)],
                          ignore_index=True)
    return votes


def choice_probabilities(
    rng: np.random.Generator, n_participants: int, n_items: int, truth: dict[str, tuple[float, ...]], n_methods: int,
    weights: tuple[float, float, float] = (0.2, 0.3, 0.5), participant_concentration: float = 4.0,
    item_concentration: float = 3.0,
) -> np.ndarray:
    """Vote probabilities of attentive participants, shape (participants, items, questions, methods)."""
    w_pop, w_part, w_item = np.asarray(weights, float) / np.sum(weights)
    pi = np.array([truth[q] for q in truth], float)                       # (Q, M)
    if pi.shape[1] != n_methods or not np.allclose(pi.sum(axis=1), 1):
        raise ValueError("each truth vector needs one probability per method, summing to 1")
    theta = _dirichlet_rows(rng, participant_concentration * pi, n_participants)   # (P, Q, M)
    phi = _dirichlet_rows(rng, item_concentration * pi, n_items)                   # (I, Q, M)
    return w_pop * pi[None, None] + w_part * theta[:, None] + w_item * phi[None, :]


def population_truth(truth: dict[str, tuple[float, ...]] | None = None,
                     methods: tuple[str, ...] = METHODS) -> pd.DataFrame:
    """The population choice probability per question and method, in percent (what the intervals should cover)."""
    truth = PAPER_TRUTH if truth is None else truth
    return pd.DataFrame([{"question": q, "method": m, "truth": 100 * p}
                         for q, probs in truth.items() for m, p in zip(methods, probs)])


def _catch_rows(rng, n_p, n_catch, n_m, inattentive, start, study_id) -> pd.DataFrame:
    """Instructed checks on the identity question: attentive people rarely fail, random clickers mostly do."""
    fail_prob = np.where(inattentive, 1 - 1 / n_m, 0.03)
    failed = rng.random((n_p, n_catch)) < fail_prob[:, None]
    p_ix, c_ix = np.meshgrid(np.arange(n_p), np.arange(n_catch), indexing="ij")
    at = _iso((start[:, None] + (c_ix * 60_000 + 5_000).astype("timedelta64[ms]")).ravel())
    return pd.DataFrame({
        "participant_id": np.array([f"P{p:03d}" for p in range(n_p)], dtype=object)[p_ix.ravel()],
        "study_id": study_id,
        "item_id": np.array([f"catch{c}" for c in range(n_catch)], dtype=object)[c_ix.ravel()],
        "face_id": None, "expression": None, "item_group": None,
        "question": "identity",
        "method": np.where(failed.ravel(), "catch_wrong", "catch_correct"),
        "position": rng.integers(0, n_m, size=failed.size),
        "is_catch": 1,
        "catch_passed": (~failed).ravel().astype(int),
        "response_ms": np.round(rng.lognormal(np.log(2500), 0.4, size=failed.size)),
        "shown_at": at, "answered_at": at,
    })


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray, n: int) -> np.ndarray:
    """n independent Dirichlet draws for each row of alpha: shape (n, *alpha.shape)."""
    gamma = rng.gamma(np.broadcast_to(alpha, (n, *alpha.shape)))
    return gamma / gamma.sum(axis=-1, keepdims=True)


def _categorical(rng: np.random.Generator, prob: np.ndarray) -> np.ndarray:
    """One categorical draw per row of the last axis."""
    cumulative = np.cumsum(prob, axis=-1)
    u = rng.random(prob.shape[:-1])[..., None] * cumulative[..., -1:]
    return np.minimum((u >= cumulative).sum(axis=-1), prob.shape[-1] - 1)


def _iso(times: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC strings, as the study app stores them."""
    return np.datetime_as_string(times.astype("datetime64[ms]"), unit="ms", timezone="UTC")
