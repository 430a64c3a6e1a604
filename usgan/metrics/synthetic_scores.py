"""Scores on the synthetic set, where the true target image of every translation is known."""
from __future__ import annotations

import torch

from ..translate import translate, unwrap
from .expression_classifier import predict


def translation_pairs(data, idx) -> tuple[list[int], list[int], list[int]]:
    """(source image, true target image, target label) for every face in idx to each other expression it has."""
    gt = data.ground_truth()
    src, trg, labels = [], [], []
    for i in idx:
        r = data.records[i]
        for k in range(7):
            if k != r.label and (r.subject, k) in gt:
                src.append(i), trg.append(gt[(r.subject, k)]), labels.append(k)
    if not src:
        raise ValueError("no face in this split has a known target; translation_scores needs the synthetic set")
    return src, trg, labels


@torch.no_grad()
def translation_scores(G, data, classifier, split="test", max_faces=None, batch_size=64, faces=None,
                       readers=()) -> dict:
    """Translate each test face to every other expression and compare with that identity's true target.

    max_faces picks that many faces spread over source expressions and subjects (None: the whole split);
    `faces` (dataset indices) overrides split and max_faces.

    target_accuracy: share of outputs the independent classifier reads as the asked-for expression.
    l1_to_target: mean |output - true target| in [-1, 1] units; l1_input_to_target is the same for the
    untouched input, the number to beat (a generator that returns its input scores exactly that).
    reader_accuracies (only with `readers`, more classifiers): each one's target accuracy on the same outputs.
    """
    idx = (data.pick_faces(split, max_faces) if faces is None else torch.as_tensor(faces)).tolist()
    src, trg, labels = translation_pairs(data, idx)
    correct, l1_out, l1_in, n = 0, 0.0, 0.0, 0
    read_right = [0] * len(readers)
    dev = next(unwrap(G).parameters()).device
    for s in range(0, len(src), batch_size):
        x = data.as_float(src[s:s + batch_size]).to(dev)
        y = data.as_float(trg[s:s + batch_size]).to(dev)
        lab = torch.tensor(labels[s:s + batch_size], device=dev)
        out = translate(G, x, lab).clamp(-1, 1)
        correct += int((predict(classifier, out.cpu()) == lab.cpu()).sum())
        for j, reader in enumerate(readers):
            read_right[j] += int((predict(reader, out.cpu()) == lab.cpu()).sum())
        l1_out += float((out - y).abs().mean(dim=(1, 2, 3)).sum())
        l1_in += float((x - y).abs().mean(dim=(1, 2, 3)).sum())
        n += len(lab)
    scores = {"target_accuracy": correct / n, "l1_to_target": l1_out / n, "l1_input_to_target": l1_in / n,
              "translations": n}
    if readers:
        scores["reader_accuracies"] = [r / n for r in read_right]
    return scores
