"""Stage-2 classification heads over sentence embeddings.

* ``logistic_regression``: scikit-learn's ``LogisticRegression`` with default settings, as the
  reference; multi-label via ``one-vs-rest``, ``multi-output`` or ``classifier-chain``.
* ``DifferentiableHead``: the reference's ``SetFitHead`` in JAX -- one linear layer, logits divided
  by ``temperature + eps``, softmax (or sigmoid for multi-label), Xavier-uniform weights and bias
  0.01, trained with AdamW and a step decay (x0.5 every 5 epochs) like ``SetFitModel.fit``.
  Its parameters are a plain dict so it can be trained end to end with the body.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

MULTI_TARGET_STRATEGIES = ("one-vs-rest", "multi-output", "classifier-chain")


def logistic_regression(multi_target_strategy: str | None = None, **params):
    """A fresh scikit-learn head (``params`` go to ``LogisticRegression``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.multioutput import ClassifierChain, MultiOutputClassifier

    clf = LogisticRegression(**params)
    if multi_target_strategy is None:
        return clf
    wrappers = {"one-vs-rest": OneVsRestClassifier, "multi-output": MultiOutputClassifier,
                "classifier-chain": ClassifierChain}
    if multi_target_strategy not in wrappers:
        raise ValueError(f"multi_target_strategy={multi_target_strategy!r}: expected one of {MULTI_TARGET_STRATEGIES}")
    return wrappers[multi_target_strategy](clf)


@dataclasses.dataclass
class DifferentiableHead:
    """Linear head; ``params = {"kernel": [D, C], "bias": [C]}``."""

    in_features: int
    out_features: int
    multitarget: bool = False
    temperature: float = 1.0
    eps: float = 1e-5
    params: dict | None = None

    def __post_init__(self) -> None:
        if self.out_features == 1 and not self.multitarget:
            self.out_features = 2  # binary is two-class softmax, as the reference

    def init(self, seed: int) -> dict:
        limit = float(np.sqrt(6.0 / (self.in_features + self.out_features)))
        kernel = jax.random.uniform(jax.random.PRNGKey(seed), (self.in_features, self.out_features),
                                    jnp.float32, -limit, limit)
        self.params = {"kernel": kernel, "bias": jnp.full((self.out_features,), 1e-2, jnp.float32)}
        return self.params

    def logits(self, params: dict, x: jax.Array) -> jax.Array:
        return (x @ params["kernel"] + params["bias"]) / (self.temperature + self.eps)

    def probabilities(self, params: dict, x: jax.Array) -> jax.Array:
        z = self.logits(params, x)
        return jax.nn.sigmoid(z) if self.multitarget else jax.nn.softmax(z, axis=-1)

    def loss(self, params: dict, x: jax.Array, y: jax.Array, weight: jax.Array) -> jax.Array:
        """Cross-entropy (or BCE for multi-label), averaged over rows with ``weight`` 1."""
        z = self.logits(params, x)
        if self.multitarget:
            per_row = optax.sigmoid_binary_cross_entropy(z, y.astype(jnp.float32)).mean(-1)
        else:
            per_row = optax.softmax_cross_entropy_with_integer_labels(z, y)
        return jnp.sum(per_row * weight) / jnp.maximum(weight.sum(), 1.0)

    def to_numpy(self) -> dict:
        return {k: np.asarray(v) for k, v in self.params.items()}


def step_decay(learning_rate: float, steps_per_epoch: int, step_size: int = 5, gamma: float = 0.5) -> optax.Schedule:
    """``torch.optim.lr_scheduler.StepLR`` stepped once per epoch."""
    def schedule(step):
        epoch = step // max(1, steps_per_epoch)
        return learning_rate * gamma ** (epoch // step_size)
    return schedule
