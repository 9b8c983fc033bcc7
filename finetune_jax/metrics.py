"""Evaluation metrics of the fine-tuning tasks, computed by the libraries the field reports with.

Classification metrics come from scikit-learn, correlations from SciPy and entity-level
precision/recall/F1 from ``seqeval`` in its default (CoNLL) mode, as Hugging Face's
``run_ner`` example reports them. Our harness and the ``transformers`` side-by-side bench call
these same functions, so a difference between the two is never a difference in scoring.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def classification(predicted: Sequence[int], labels: Sequence[int], label_names: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro/micro/weighted F1 and the F1 of each class (``f1/<name>``).

    The averaged F1s run over the classes present in ``labels`` or ``predicted`` (scikit-learn's
    default, as ``evaluate``'s "f1" that Hugging Face's examples use); a class absent from both
    reports no per-class F1.
    """
    from sklearn import metrics as skm

    predicted, labels = np.asarray(predicted), np.asarray(labels)
    out = {"accuracy": float(skm.accuracy_score(labels, predicted))}
    for average in ("macro", "micro", "weighted"):
        out[f"{average}_f1"] = float(skm.f1_score(labels, predicted, average=average, zero_division=0))
    present = sorted(set(labels.tolist()) | set(predicted.tolist()))
    per_class = skm.f1_score(labels, predicted, labels=present, average=None, zero_division=0)
    out.update({f"f1/{label_names[c]}": float(f) for c, f in zip(present, per_class)})
    return out


def multi_label(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Micro and macro F1 over ``[N, C]`` 0/1 indicator arrays and the exact-match (subset) accuracy."""
    from sklearn import metrics as skm

    predicted, labels = np.asarray(predicted).astype(int), np.asarray(labels).astype(int)
    return {"accuracy": float(skm.accuracy_score(labels, predicted)),
            "micro_f1": float(skm.f1_score(labels, predicted, average="micro", zero_division=0)),
            "macro_f1": float(skm.f1_score(labels, predicted, average="macro", zero_division=0))}


def regression(predicted: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation (GLUE STS-B's metrics) and the mean squared error."""
    from scipy import stats

    predicted, labels = np.asarray(predicted, np.float64), np.asarray(labels, np.float64)
    return {"pearson": float(stats.pearsonr(predicted, labels)[0]),
            "spearman": float(stats.spearmanr(predicted, labels)[0]),
            "mse": float(np.mean((predicted - labels) ** 2))}


def token_classification(predicted_tags: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level micro precision/recall/F1 (``seqeval``, default mode) and token accuracy, from
    BIO tag sequences per example (``predicted_tags[i]`` as long as ``tags[i]``)."""
    from seqeval import metrics as sq

    for i, (p, t) in enumerate(zip(predicted_tags, tags, strict=True)):
        if len(p) != len(t):
            raise ValueError(f"example {i}: {len(p)} predicted tags for {len(t)} gold tags")
    predicted_tags, tags = [list(p) for p in predicted_tags], [list(t) for t in tags]
    return {"f1": float(sq.f1_score(tags, predicted_tags)), "precision": float(sq.precision_score(tags, predicted_tags)),
            "recall": float(sq.recall_score(tags, predicted_tags)),
            "accuracy": float(sq.accuracy_score(tags, predicted_tags))}
