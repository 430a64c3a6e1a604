"""The validation objective a run reports every few hundred iterations, and that Ray Tune optimises.

    expression_accuracy : share of held-out translations the independent classifier reads as the target
    identity_error      : L1 to the true target / L1 of the untouched input to it
                          (0 = perfect, 1 = no better than returning the input)
    objective           : expression_accuracy - IDENTITY_WEIGHT * identity_error   (higher is better)

Scored on 21 fixed test faces, three per source expression spread over the test subjects, each translated
to the six other expressions (126 translations). Only data whose every expression is known (the synthetic
set) can be scored so; real datasets are evaluated with ACD by `python -m usgan.evaluate`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.expressions import EXPRESSIONS
from .expression_classifier import ExpressionNet
from .synthetic_scores import translation_scores

IDENTITY_WEIGHT = 0.5


def objective(expression_accuracy: float, identity_error: float, identity_weight: float = IDENTITY_WEIGHT) -> float:
    return expression_accuracy - identity_weight * identity_error


@dataclass
class Validator:
    """Carries the classifier's weights to the workers (plain tensors pickle through Ray's object store)."""
    classifier_state: dict
    # Three test faces per source expression, so every expression weighs the same in the objective.
    max_faces: int = 3 * len(EXPRESSIONS)

    def faces(self, data) -> torch.Tensor:
        return data.pick_faces("test", self.max_faces)

    def classifier(self) -> ExpressionNet:
        net = ExpressionNet()
        net.load_state_dict(self.classifier_state)
        return net.eval()

    @torch.no_grad()
    def __call__(self, G, data) -> dict:
        s = translation_scores(G, data, self.classifier(), faces=self.faces(data))
        ident = s["l1_to_target"] / max(s["l1_input_to_target"], 1e-8)
        return {"val/expression_accuracy": s["target_accuracy"], "val/identity_error": ident,
                "val/objective": objective(s["target_accuracy"], ident)}


def build_validator(data, cache_dir, progress=True) -> Validator:
    """The validator for data with known targets (the synthetic set); trains its classifier once."""
    from .expression_classifier import load_or_train
    gt = data.ground_truth()
    test_subjects = {data.records[i].subject for i in data.test_idx.tolist()}
    if not any((s, k) in gt for s in test_subjects for k in range(7) if k):
        raise ValueError("validation needs faces whose every expression is known (the synthetic set); "
                         "real datasets are validated with ACD by python -m usgan.evaluate")
    net, acc = load_or_train(data, cache_dir, progress)
    if progress:
        print(f"[validation] independent expression classifier: {acc:.1%} on held-out ground truth")
    return Validator({k: v.clone() for k, v in net.state_dict().items()})
