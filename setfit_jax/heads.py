"""Stage-2 classification heads over sentence embeddings.

* ``logistic_regression``: scikit-learn's ``LogisticRegression`` with default settings, as the
  reference; multi-label via ``one-vs-rest``, ``multi-output`` or ``classifier-chain``.
* ``DifferentiableHead``: the reference's ``SetFitHead`` in JAX -- one linear layer, logits divided
  by ``temperature + eps``, softmax (or sigmoid for multi-label), Xavier-uniform weights and bias
  0.01, trained by ``DifferentiableHead.fit`` with AdamW and a step decay (x0.5 every 5 epochs)
  like ``SetFitModel.fit``. Its parameters are a plain dict so it can be trained end to end with
  the body (``end_to_end=True``, the body at ``body_learning_rate[1]``). With the body frozen the
  embeddings are computed once without dropout (the reference recomputes them every step with the
  body's dropout on).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from modernbert_jax.config import check_number
from setfit_jax import losses
from modernbert_jax.data.packing import rows_needed

if TYPE_CHECKING:
    from setfit_jax.encoder import SentenceEncoder
    from setfit_jax.training_args import TrainingArguments

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
        check_number("in_features", self.in_features, low=1, integer=True)
        check_number("out_features", self.out_features, low=1, integer=True)
        check_number("temperature", self.temperature, low=0, low_open=True)
        check_number("eps", self.eps, low=0)
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

    def fit(self, body: "SentenceEncoder", texts: Sequence[str], label_ids: np.ndarray, args: "TrainingArguments",
            *, num_classes: int, normalize: bool) -> None:
        """Train on ``body``'s embeddings of ``texts`` (and the body too with ``args.end_to_end``):
        AdamW, StepLR(5, 0.5) per epoch, shuffled batches of ``classifier_batch_size``.

        A head whose size does not match ``num_classes`` (or that was never initialised) starts
        fresh from ``args.seed``; ``normalize`` L2-normalises the embeddings first.
        """
        if self.out_features != max(num_classes, 1 if self.multitarget else 2) or self.params is None:
            self.out_features = num_classes if self.multitarget else max(num_classes, 2)
            self.init(args.seed)
        bs = args.classifier_batch_size
        steps_per_epoch = math.ceil(len(texts) / bs)
        l2 = args.l2_weight or 1e-2
        head_tx = optax.adamw(step_decay(args.head_learning_rate, steps_per_epoch), weight_decay=l2)
        rng = np.random.default_rng(args.seed)

        def features(emb):
            return losses.l2_normalize(emb) if normalize else emb

        def batches():
            """(indices, weight) per step: the last partial batch is filled up and weighted out."""
            for _ in range(args.classifier_num_epochs):
                order = rng.permutation(len(texts))
                for start in range(0, len(order), bs):
                    chunk = order[start: start + bs]
                    yield chunk, (np.arange(bs) < len(chunk)).astype(np.float32)

        if not args.end_to_end:
            emb = features(jnp.asarray(body.encode(texts)))

            @jax.jit
            def step(hp, opt_state, x, y, w):
                grads = jax.grad(self.loss)(hp, x, y, w)
                updates, opt_state = head_tx.update(grads, opt_state, hp)
                return optax.apply_updates(hp, updates), opt_state

            hp, opt_state = self.params, head_tx.init(self.params)
            for chunk, w in batches():
                idx = np.resize(chunk, bs)
                hp, opt_state = step(hp, opt_state, emb[idx], jnp.asarray(label_ids[idx]), w)
            self.params = hp
            return

        ids = body.tokenize(texts, max_length=args.max_length)
        train_body = body.with_config(matmul_dtype="bfloat16") if args.use_amp else body
        row_len = body.row_len_for(ids)
        rows = rows_needed(sorted((len(x) for x in ids), reverse=True)[:bs], row_len)
        tx = optax.multi_transform(
            {"body": optax.adamw(step_decay(args.body_classifier_learning_rate, steps_per_epoch), weight_decay=l2),
             "head": head_tx},
            {"body": "body", "head": "head"})

        def loss_fn(params, packed, y, w, dropout_key):
            emb = train_body.embed(params["body"], packed, deterministic=not args.dropout, dropout_rng=dropout_key)
            return self.loss(params["head"], features(emb), y, w)

        @jax.jit
        def step(params, opt_state, packed, y, w, dropout_key):
            grads = jax.grad(loss_fn)(params, packed, y, w, dropout_key)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        params = {"body": body.params, "head": self.params}
        opt_state = tx.init(params)
        key = jax.random.PRNGKey(args.seed)
        for n_step, (chunk, w) in enumerate(batches()):
            packed = body.pack([ids[i] for i in chunk], rows, row_len, bs)
            y = np.resize(label_ids[chunk], (bs,) + label_ids.shape[1:])
            params, opt_state = step(params, opt_state, packed, jnp.asarray(y), w, jax.random.fold_in(key, n_step))
        body.params, self.params = params["body"], params["head"]


def step_decay(learning_rate: float, steps_per_epoch: int, step_size: int = 5, gamma: float = 0.5) -> optax.Schedule:
    """``torch.optim.lr_scheduler.StepLR`` stepped once per epoch."""
    check_number("learning_rate", learning_rate, low=0, low_open=True)
    check_number("step_size", step_size, low=1, integer=True)
    check_number("gamma", gamma, low=0, low_open=True)

    def schedule(step):
        epoch = step // max(1, steps_per_epoch)
        return learning_rate * gamma ** (epoch // step_size)
    return schedule
