"""``TrainingArguments``: the reference library's arguments and defaults, minus its logging plumbing.

Tuple-valued fields hold (embedding phase, classifier phase) values, exactly as
``setfit.TrainingArguments``: ``batch_size=(16, 2)``, ``num_epochs=(1, 16)``,
``body_learning_rate=(2e-5, 1e-5)``; a scalar sets both. ``loss`` is a name
(``cosine_similarity`` | ``supcon`` | ``batch_hard_triplet`` | ``batch_all_triplet``) rather than a
torch class. Stage 1 uses AdamW with weight decay ``l2_weight`` on all weights but biases and
norms, a linear warmup over ``ceil(warmup_proportion * steps)`` steps then linear decay to 0, and
global-norm gradient clipping at ``max_grad_norm`` (the Hugging Face trainer's defaults the
reference inherits). ``use_amp=True`` trains the body with bfloat16-input matmuls accumulated in
float32 (``modernbert_jax.precision``; the reference's flag, which there means fp16 autocast on
CUDA); parameters, optimiser state and inference stay float32. Dropout stays on during training as in the reference (``dropout=False`` turns it
off, e.g. for parity checks). ``max_length`` caps tokens per text for the differentiable head's
training, as the reference; logging and checkpoint fields of the reference have no counterpart.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple, Union

from setfit_jax.losses import LOSSES
from setfit_jax.sampler import SAMPLING_STRATEGIES


@dataclasses.dataclass
class TrainingArguments:
    batch_size: Union[int, Tuple[int, int]] = (16, 2)
    num_epochs: Union[int, Tuple[int, int]] = (1, 16)
    max_steps: int = -1
    sampling_strategy: str = "oversampling"
    num_iterations: Optional[int] = None
    body_learning_rate: Union[float, Tuple[float, float]] = (2e-5, 1e-5)
    head_learning_rate: float = 1e-2
    loss: str = "cosine_similarity"
    margin: float = 0.25
    end_to_end: bool = False
    warmup_proportion: float = 0.1
    l2_weight: float = 0.01
    max_grad_norm: float = 1.0
    max_length: Optional[int] = None
    seed: int = 42
    use_amp: bool = False
    dropout: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, int):
            self.batch_size = (self.batch_size, self.batch_size)
        if isinstance(self.num_epochs, int):
            self.num_epochs = (self.num_epochs, self.num_epochs)
        if isinstance(self.body_learning_rate, (int, float)):
            self.body_learning_rate = (float(self.body_learning_rate),) * 2
        if not 0.0 <= self.warmup_proportion <= 1.0:
            raise ValueError(f"warmup_proportion must be in [0, 1], got {self.warmup_proportion}")
        if self.sampling_strategy not in SAMPLING_STRATEGIES:
            raise ValueError(f"sampling_strategy={self.sampling_strategy!r}: expected one of {SAMPLING_STRATEGIES}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {LOSSES}")
        if min(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no cap) or positive, got {self.max_steps}")

    @property
    def embedding_batch_size(self) -> int:
        return self.batch_size[0]

    @property
    def classifier_batch_size(self) -> int:
        return self.batch_size[1]

    @property
    def embedding_num_epochs(self) -> int:
        return self.num_epochs[0]

    @property
    def classifier_num_epochs(self) -> int:
        return self.num_epochs[1]

    @property
    def body_embedding_learning_rate(self) -> float:
        return self.body_learning_rate[0]

    @property
    def body_classifier_learning_rate(self) -> float:
        return self.body_learning_rate[1]

    def replace(self, **changes) -> "TrainingArguments":
        return dataclasses.replace(self, **changes)
