"""The reference ``setfit`` library (torch, CPU) run beside ours: the peer of the few-shot protocol."""

from __future__ import annotations

import tempfile
import time
from typing import Any, Sequence


def train_and_predict(train_args: dict[str, Any], backbone: str, train: tuple[Sequence[str], Sequence[Any]],
                      test_texts: Sequence[str], seed: int, *, threads: int = 0) -> tuple[Any, dict[str, float]]:
    """Train ``setfit`` with our argument names on ``train`` from ``backbone``; its test predictions and
    timings. ``threads`` > 0 pins torch's CPU pool (two libraries on one machine must not oversubscribe it)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import losses
    from setfit import SetFitModel, Trainer, TrainingArguments
    from setfit.losses import SupConLoss

    if threads > 0:
        torch.set_num_threads(threads)
    loss_classes = {"cosine_similarity": losses.CosineSimilarityLoss, "supcon": SupConLoss,
                    "batch_hard_triplet": losses.BatchHardTripletLoss, "batch_all_triplet": losses.BatchAllTripletLoss}
    train_args = {**train_args, "loss": loss_classes[train_args["loss"]]}
    torch.manual_seed(seed)
    model = SetFitModel.from_pretrained(backbone, device="cpu")
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, seed=seed, report_to="none", save_strategy="no",
                                 show_progress_bar=False, logging_strategy="no", **train_args)
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": list(train[0]), "label": list(train[1])}))
        t0 = time.perf_counter()
        trainer.train()
        t1 = time.perf_counter()
    predicted = model.predict(list(test_texts), as_numpy=True)
    return predicted, {"train_seconds": t1 - t0, "predict_seconds": time.perf_counter() - t1}
