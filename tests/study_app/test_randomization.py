"""Randomization is a pure, balanced function of (study seed, participant index)."""

from collections import Counter

import pytest

from study_app.randomization import participant_plan, position_counts
from study_app.settings import CATCH_LABEL

METHODS = ["GANimation", "STGAN", "StarGAN", "USGAN"]
ITEMS = [f"face{f:02d}:{e}" for f in range(18) for e in ("happy", "sad")]


def test_same_inputs_same_plan_and_seeds_differ():
    a = participant_plan(11, 5, ITEMS, METHODS, 10, 2)
    assert a == participant_plan(11, 5, list(reversed(ITEMS)), list(reversed(METHODS)), 10, 2)
    assert a != participant_plan(12, 5, ITEMS, METHODS, 10, 2)
    assert a != participant_plan(11, 6, ITEMS, METHODS, 10, 2)


def test_every_method_in_every_position_equally_often_per_item():
    n = len(METHODS)
    plans = [participant_plan(3, p, ITEMS, METHODS) for p in range(3 * n)]
    per_item = Counter()
    for plan in plans:
        for t in plan:
            per_item.update((t.item_key, label, pos) for pos, label in enumerate(t.labels))
    # 3 blocks of 4 participants: each method sits in each position exactly 3 times for every item.
    assert set(per_item.values()) == {3}
    assert len(per_item) == len(ITEMS) * n * n
    totals = position_counts(plans)
    assert len(set(totals.values())) == 1


def test_items_spread_evenly_when_each_participant_sees_a_subset():
    k = 10
    plans = [participant_plan(5, p, ITEMS, METHODS, k, 0) for p in range(18)]
    shown = Counter(t.item_key for plan in plans for t in plan)
    assert set(shown) == set(ITEMS)
    assert max(shown.values()) - min(shown.values()) <= 1
    for plan in plans:
        keys = [t.item_key for t in plan]
        assert len(keys) == k == len(set(keys))  # no item twice for one participant
    # Positions are still balanced per item over the showings that happened (each item shown 5 times here).
    per_item = Counter((t.item_key, t.labels[0]) for plan in plans for t in plan)
    for item in ITEMS:
        firsts = [per_item[(item, m)] for m in METHODS]
        assert max(firsts) - min(firsts) <= 1


def test_orders_differ_between_participants():
    orders = {tuple(t.item_key for t in participant_plan(1, p, ITEMS, METHODS)) for p in range(10)}
    assert len(orders) == 10


def test_catch_trials_count_place_and_copy_position():
    n_catch = 3
    plans = [participant_plan(9, p, ITEMS, METHODS, 8, n_catch) for p in range(40)]
    copy_positions = Counter()
    for plan in plans:
        catches = [t for t in plan if t.is_catch]
        assert len(plan) == 8 + n_catch and len(catches) == n_catch
        assert not plan[0].is_catch
        for t in catches:
            assert t.labels.count(CATCH_LABEL) == 1 and len(t.labels) == len(METHODS)
            assert len(set(t.labels)) == len(METHODS)
            copy_positions[t.labels.index(CATCH_LABEL)] += 1
            assert t.item_key in {x.item_key for x in plan if not x.is_catch}
        for t in plan:
            if not t.is_catch:
                assert CATCH_LABEL not in t.labels and sorted(t.labels) == METHODS
    assert set(copy_positions.values()) == {40 * n_catch // len(METHODS)}


def test_needs_two_methods_and_an_item():
    with pytest.raises(ValueError):
        participant_plan(1, 0, ITEMS, ["only"])
    with pytest.raises(ValueError):
        participant_plan(1, 0, [], METHODS)
