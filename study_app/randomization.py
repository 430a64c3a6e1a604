"""Auditable randomization: each participant's trials as a pure function of (study seed, participant index).

Three parts, each balanced across participants rather than merely random:
- which items a participant sees: consecutive windows over one seeded permutation of all items, so every item
  is shown equally often (to within one) however many participants there are;
- the order of a participant's trials: a seeded shuffle per participant;
- candidate positions: the v-th showing of an item uses a seeded base order (new for every block of n showings)
  rotated by v mod n, so over each n showings every method sits in every position exactly once. The catch copy
  is rotated the same way over catch trials.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from study_app.settings import CATCH_LABEL


@dataclass(frozen=True)
class PlannedTrial:
    """One screen: the item, whether it is a catch trial, and the candidate labels in screen order."""

    item_key: str
    is_catch: bool
    labels: tuple[str, ...]


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts; sha256 so it is the same on every Python and machine."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _shuffled(values: Sequence[str], *seed_parts: object) -> list[str]:
    out = list(values)
    random.Random(derive_seed(*seed_parts)).shuffle(out)
    return out


def item_window(seed: int, participant_index: int, item_keys: Sequence[str], per_participant: int | None
                ) -> list[tuple[str, int]]:
    """The participant's items with, for each, how many earlier showings that item had (its visit number)."""
    base = _shuffled(sorted(item_keys), seed, "items")
    n_items = len(base)
    k = n_items if per_participant is None else max(1, min(per_participant, n_items))
    # Showing t of the unrolled sequence base[0], base[1], ... is item t % N for the (t // N)-th time.
    starts = participant_index * k
    return [(base[(starts + j) % n_items], (starts + j) // n_items) for j in range(k)]


def candidate_order(seed: int, item_key: str, visit: int, methods: Sequence[str]) -> tuple[str, ...]:
    """Method labels in screen order for the visit-th showing of an item (Latin-square rotation)."""
    n = len(methods)
    base = _shuffled(sorted(methods), seed, "layout", item_key, visit // n)
    shift = visit % n
    return tuple(base[(pos + shift) % n] for pos in range(n))


def catch_order(seed: int, participant_index: int, catch_number: int, n_catch: int, methods: Sequence[str]
                ) -> tuple[str, ...]:
    """Screen order of a catch trial: the input copy at a rotated position, n-1 methods shuffled around it."""
    n = len(methods)
    rng = random.Random(derive_seed(seed, "catch-layout", participant_index, catch_number))
    others = rng.sample(sorted(methods), n - 1)
    copy_pos = (participant_index * n_catch + catch_number) % n
    return tuple(others[:copy_pos]) + (CATCH_LABEL,) + tuple(others[copy_pos:])


def participant_plan(seed: int, participant_index: int, item_keys: Sequence[str], methods: Sequence[str],
                     per_participant: int | None = None, n_catch: int = 0) -> list[PlannedTrial]:
    """All trials of one participant, in order; the same inputs always give the same plan."""
    if len(methods) < 2:
        raise ValueError("a forced-choice study needs at least 2 methods")
    if not item_keys:
        raise ValueError("a study needs at least one item")
    window = item_window(seed, participant_index, item_keys, per_participant)
    rng = random.Random(derive_seed(seed, "order", participant_index))
    rng.shuffle(window)
    trials = [PlannedTrial(key, False, candidate_order(seed, key, visit, methods)) for key, visit in window]

    # Catch trials reuse one of the participant's items (its face and named expression), never come first,
    # and are spread at seeded places.
    total = len(trials) + n_catch
    slots = sorted(rng.sample(range(1, total), n_catch)) if n_catch else []
    for number, slot in enumerate(slots):
        key = rng.choice(window)[0]
        layout = catch_order(seed, participant_index, number, n_catch, methods)
        trials.insert(slot, PlannedTrial(key, True, layout))
    return trials


def position_counts(plans: Sequence[Sequence[PlannedTrial]]) -> Counter[tuple[str, int]]:
    """How often each label sat at each position over non-catch trials; the audit of the balance."""
    counts: Counter[tuple[str, int]] = Counter()
    for plan in plans:
        for trial in plan:
            if not trial.is_catch:
                counts.update((label, pos) for pos, label in enumerate(trial.labels))
    return counts
