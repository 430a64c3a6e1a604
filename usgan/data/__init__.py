"""Datasets: readers per layout, the synthetic faces, the subject-disjoint split and the uint8 cache.

    data = load_data(cfg.data, image_size=128)     # FaceData: all images once, as uint8, plus the split
    for x, y in data.batches("train", batch_size=16, seed=0, rank=0, world_size=1): ...
    faces = data.pick_faces("test", 7)             # one face per source expression, the same every run
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DatasetError
from ..images import to_float
from .align import CropGeometry
from .cache import build_cache
from .expressions import EXPRESSIONS
from .readers import ReadLog, Record, read_expression_folders
from .sources import read_source
from .split import split_subjects, stratified, write_split
from .synthetic import SYNTHETIC_CROP, materialize

__all__ = ["EXPRESSIONS", "FaceData", "load_data", "read_sources", "gather_records", "training_crop"]


def read_sources(data_cfg, skip_bad: bool = False, progress: bool = True, keep_going: bool = False) -> list[ReadLog]:
    """Every configured source read, with its log; keep_going records a source's error instead of raising it."""
    logs = []
    for spec in data_cfg.sources:
        log = ReadLog(spec.strip())
        try:
            if spec.strip().lower() == "synthetic":
                root = materialize(data_cfg.cache_dir, data_cfg.synthetic_identities, data_cfg.synthetic_seed,
                                   progress=progress)
                log.records = read_expression_folders(root, source="synthetic", log=log)
            else:
                read_source(spec, data_cfg.kdef_angles, data_cfg.rafd_angles, data_cfg.rafd_gazes, skip_bad, log)
        except DatasetError as e:
            if not keep_going:
                raise
            log.error = str(e)
        logs.append(log)
    return logs


def training_crop(data_cfg) -> CropGeometry:
    """Where the eyes sit in the crops a run trains on: the synthetic set's drawing, else what alignment targets."""
    if not data_cfg.align_faces and all(s.strip().lower() == "synthetic" for s in data_cfg.sources):
        return SYNTHETIC_CROP
    # Centre-cropped photo sets have no single geometry; data.align_eyes is the one their faces are aligned to.
    return CropGeometry(*data_cfg.align_eyes)


def gather_records(data_cfg, skip_bad: bool = False, progress: bool = True) -> list[Record]:
    """Records of every configured source; the synthetic set is rendered to disk and read like any folder."""
    return [r for log in read_sources(data_cfg, skip_bad, progress) for r in log.records]


def _stream(*key) -> torch.Generator:
    """A generator seeded by the key's digest, so streams with different keys never coincide."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def epoch_shard(idx: torch.Tensor, seed: int, epoch: int, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of one epoch; the permutation depends only on (seed, epoch), so shards partition idx."""
    return idx[torch.randperm(len(idx), generator=_stream("shuffle", seed, epoch))][rank::world_size]


@dataclass
class FaceData:
    images: torch.Tensor      # (N, 3, S, S) uint8
    labels: torch.Tensor      # (N,) int64
    records: list[Record]
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    sources: list[ReadLog] = field(default_factory=list)   # per source: what was read, left out and how

    def index(self, split: str) -> torch.Tensor:
        return {"train": self.train_idx, "test": self.test_idx}[split]

    def batches(self, split="train", batch_size=16, seed=0, rank=0, world_size=1, hflip=True):
        """Endless shuffled batches in [-1, 1]; each rank draws from its own shard of every epoch."""
        idx = self.index(split)
        if len(idx) < world_size:
            raise DatasetError(f"{len(idx)} {split} images cannot be shared by {world_size} workers; use fewer workers")
        # Flips come from a per-rank stream: ranks with more batches draw more, which must not move the shuffle.
        flips = _stream("flip", seed, rank)
        for epoch in itertools.count():
            shard = epoch_shard(idx, seed, epoch, rank, world_size)
            if len(shard) < batch_size:
                raise DatasetError(f"the {split} shard has {len(shard)} images, fewer than batch size {batch_size}; "
                                   "lower --batch-size or use fewer workers")
            for s in range(0, len(shard) - batch_size + 1, batch_size):
                b = shard[s:s + batch_size]
                x = to_float(self.images[b])
                if hflip:
                    flip = torch.rand(len(b), generator=flips) < 0.5
                    x[flip] = x[flip].flip(-1)
                yield x, self.labels[b]

    def pick_faces(self, split="test", n=None, seed=0) -> torch.Tensor:
        """A fixed choice of n faces of the split spread over source expressions and subjects (all when n is None)."""
        return torch.tensor(stratified(self.records, self.index(split).tolist(), n, seed), dtype=torch.int64)

    def ground_truth(self) -> dict[tuple[str, int], int]:
        """(subject, label) -> image index: where every identity has every expression (the synthetic set)."""
        return {(r.subject, r.label): i for i, r in enumerate(self.records)}

    def as_float(self, idx) -> torch.Tensor:
        return to_float(self.images[idx])

    def tag(self) -> str:
        """Names what a model trained on this data saw: the pixels, the labels and the split (cache keys)."""
        h = hashlib.sha1(f"{tuple(self.images.shape)}|{self.train_idx.tolist()}".encode())
        h.update(self.images.contiguous().numpy())
        h.update(self.labels.contiguous().numpy())
        return h.hexdigest()[:12]


def load_data(data_cfg, image_size: int, split_file=None, skip_bad: bool = False, progress: bool = True) -> FaceData:
    """Read, cache and split the configured sources."""
    return face_data(read_sources(data_cfg, skip_bad, progress), data_cfg, image_size, split_file, skip_bad, progress)


def face_data(logs: list[ReadLog], data_cfg, image_size: int, split_file=None, skip_bad: bool = False,
              progress: bool = True) -> FaceData:
    """Cache and split the records the sources' logs hold."""
    records = [r for log in logs for r in log.records]
    images, labels, records = build_cache(records, image_size, data_cfg.cache_dir, data_cfg.align_faces, skip_bad,
                                          progress, training_crop(data_cfg))
    train_s, test_s = split_subjects(records, data_cfg.test_fraction, data_cfg.split_seed)
    if split_file:
        Path(split_file).parent.mkdir(parents=True, exist_ok=True)
        write_split(split_file, train_s, test_s, records, data_cfg.split_seed, data_cfg.test_fraction)
    train_idx = torch.tensor([i for i, r in enumerate(records) if r.subject in train_s], dtype=torch.int64)
    test_idx = torch.tensor([i for i, r in enumerate(records) if r.subject in test_s], dtype=torch.int64)
    if len(train_idx) == 0:
        raise DatasetError("the training split is empty; add images or lower data.test_fraction")
    return FaceData(images, labels, records, train_idx, test_idx, logs)
