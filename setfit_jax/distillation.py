"""Distil a trained SetFit teacher into a (smaller) student, as ``setfit.DistillationTrainer``.

Stage 1: every candidate pair of the (unlabelled) training texts gets the teacher's cosine
similarity as its target, and the student body is fine-tuned with the same CosineSimilarityLoss
loop as ``Trainer``. Stage 2: the student's head is fitted on the teacher's predicted labels (its
label set is the teacher's labels that the teacher predicts on these texts).
The reference looks the teacher similarity up by label instead of by sentence (every target is
``sim[0][0]``); here targets are indexed by sentence, which is what its docstring describes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from setfit_jax import data, sampler
from setfit_jax.modeling import SetFitModel
from setfit_jax.trainer import Trainer, encode_labels
from setfit_jax.training_args import TrainingArguments


class DistillationTrainer(Trainer):
    """``DistillationTrainer(teacher_model, student_model, args, train_dataset)``; labels are not needed."""

    def __init__(self, teacher_model: SetFitModel, student_model: SetFitModel, args: TrainingArguments | None = None,
                 train_dataset: Any = None, eval_dataset: Any = None, column_mapping: dict[str, str] | None = None) -> None:
        super().__init__(student_model, args=args, eval_dataset=eval_dataset, column_mapping=column_mapping)
        if not teacher_model.fitted:
            raise ValueError("the teacher model must be trained before distillation")
        self.teacher_model = teacher_model
        if train_dataset is not None:
            self.train_dataset = data.to_examples(train_dataset, text_column=self._columns["text_column"],
                                                  label_column=None)

    def train(self, args: TrainingArguments | None = None) -> dict:
        args = args or self.args
        if self.train_dataset is None:
            raise ValueError("distillation needs a train_dataset of texts")
        if args.loss != "cosine_similarity":
            raise ValueError(f"distillation uses the cosine_similarity loss, got loss={args.loss!r}")
        texts, _ = self.train_dataset
        teacher = self.teacher_model.model_body.encode(texts)
        teacher = teacher / np.maximum(np.linalg.norm(teacher, axis=-1, keepdims=True), 1e-12)
        max_pairs = -1 if args.max_steps == -1 else args.max_steps * args.embedding_batch_size
        pairs = sampler.distillation_pairs(teacher @ teacher.T, num_iterations=args.num_iterations,
                                           max_pairs=max_pairs)
        losses = self.train_embeddings(texts, np.zeros(len(texts), np.int64), args, pairs=pairs)
        student = self.model
        predicted = self.teacher_model.predict(texts)
        if not student.multilabel:
            # The student can only learn the classes the teacher predicts on these texts.
            seen = set(predicted)
            student.labels = [y for y in self.teacher_model.labels if y in seen]
        label_ids = encode_labels(student, predicted)
        self.train_classifier(texts, label_ids, args)
        self.history = {"embedding_loss": losses}
        return self.history
