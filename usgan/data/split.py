"""Subject-disjoint train/test split: no person appears on both sides, so test faces are unseen identities."""
from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

from .readers import Record


def split_subjects(records: list[Record], test_fraction: float = 0.1, seed: int = 0) -> tuple[set, set]:
    """(train_subjects, test_subjects), chosen per source so each dataset is represented in the test set."""
    by_source: dict[str, list[str]] = {}
    for r in records:
        by_source.setdefault(r.source, [])
        if r.subject not in by_source[r.source]:
            by_source[r.source].append(r.subject)
    rng = random.Random(seed)
    test = set()
    for source in sorted(by_source):
        subjects = sorted(by_source[source])
        rng.shuffle(subjects)
        n_test = min(len(subjects) - 1, max(1, math.ceil(test_fraction * len(subjects)))) if len(subjects) > 1 else 0
        test.update(subjects[:n_test])
    train = {r.subject for r in records} - test
    return train, test


def stratified(records: list[Record], idx: list[int], n: int | None = None, seed: int = 0) -> list[int]:
    """n of idx dealt round-robin over source expressions, each time from the least-shown subject; all if n is None."""
    if n is None or n >= len(idx):
        return list(idx)
    # Records are stored folder by folder, so idx[:n] would be one or two expressions; the shuffle breaks ties.
    by_label: dict[int, list[int]] = {}
    for i in random.Random(seed).sample(list(idx), len(idx)):
        by_label.setdefault(records[i].label, []).append(i)
    shown, picked = Counter(), []
    while len(picked) < n:
        for pool in (by_label[k] for k in sorted(by_label)):
            if pool and len(picked) < n:
                i = min(pool, key=lambda j: shown[records[j].subject])
                pool.remove(i)
                shown[records[i].subject] += 1
                picked.append(i)
    return picked


def write_split(path, train: set, test: set, records: list[Record], seed: int, test_fraction: float) -> None:
    """Record the split beside the run so evaluation uses exactly these test subjects."""
    Path(path).write_text(json.dumps({
        "seed": seed, "test_fraction": test_fraction,
        "n_train_images": sum(r.subject in train for r in records),
        "n_test_images": sum(r.subject in test for r in records),
        "train_subjects": sorted(train), "test_subjects": sorted(test)}, indent=1))
