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
Every field is checked when the arguments are built (and on ``replace``): an error names the
field and the accepted range (the reference checks only ``warmup_proportion``).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple, Union

from modernbert_jax.config import check_number
from setfit_jax.losses import LOSSES
from setfit_jax.sampler import SAMPLING_STRATEGIES


def _pair(name: str, value) -> tuple:
    """A (embedding phase, classifier phase) tuple from a scalar or a 2-sequence, as the reference."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}={value!r} must be one value or an (embedding, classifier) pair")
        return tuple(value)
    return (value, value)


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
        self.batch_size = _pair("batch_size", self.batch_size)
        self.num_epochs = _pair("num_epochs", self.num_epochs)
        self.body_learning_rate = _pair("body_learning_rate", self.body_learning_rate)
        for phase, (size, epochs, lr) in enumerate(zip(self.batch_size, self.num_epochs, self.body_learning_rate)):
            check_number(f"batch_size[{phase}]", size, low=1, integer=True)
            check_number(f"num_epochs[{phase}]", epochs, low=1, integer=True)
            check_number(f"body_learning_rate[{phase}]", lr, low=0, low_open=True)
        self.body_learning_rate = tuple(float(lr) for lr in self.body_learning_rate)
        check_number("head_learning_rate", self.head_learning_rate, low=0, low_open=True)
        check_number("warmup_proportion", self.warmup_proportion, low=0, high=1)
        check_number("margin", self.margin, low=0)
        check_number("l2_weight", self.l2_weight, low=0)
        check_number("max_grad_norm", self.max_grad_norm, low=0)  # 0: no clipping
        check_number("seed", self.seed, low=0, integer=True)  # numpy's generators take no negative seed
        if self.num_iterations is not None:
            check_number("num_iterations", self.num_iterations, low=1, integer=True)
        if self.max_length is not None:
            check_number("max_length", self.max_length, low=1, integer=True)
        if self.max_steps != -1:
            check_number("max_steps (or -1: no cap)", self.max_steps, low=1, integer=True)
        if self.sampling_strategy not in SAMPLING_STRATEGIES:
            raise ValueError(f"sampling_strategy={self.sampling_strategy!r}: expected one of {SAMPLING_STRATEGIES}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {LOSSES}")
        for name in ("end_to_end", "use_amp", "dropout"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}={getattr(self, name)!r} must be True or False")

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
