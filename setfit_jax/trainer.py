"""``Trainer``: SetFit's two stages -- siamese fine-tuning of the body, then fitting the head.

Stage 1 (``train_embeddings``) follows the reference: pairs from ``PairSampler`` (or, for
SupCon/triplet losses, group-by-label batches of single sentences), shuffled each epoch with the
run's seed, AdamW with warmup and linear decay, gradient clipping, dropout on. Each step embeds
the *distinct* sentences of its batch once, packed into a fixed ``[rows, row_len]`` block whose
shape is fixed for the whole run (so ``jit`` compiles one step), and the loss gathers pair
members from those embeddings -- the same arithmetic as embedding both sides of every pair.

Stage 2 (``train_classifier``): scikit-learn logistic regression on the embeddings, or the JAX
``DifferentiableHead``, which trains itself (``heads.DifferentiableHead.fit``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from setfit_jax import data, losses, optim, sampler
from modernbert_jax.data.packing import rows_needed
from setfit_jax.encoder import SentenceEncoder
from setfit_jax.modeling import SetFitModel
from setfit_jax.training_args import TrainingArguments


def encode_labels(model: SetFitModel, labels: Sequence) -> np.ndarray:
    """Class ids ``[n]`` (or a 0/1 matrix for multi-label), fixing ``model.labels`` if unset."""
    if model.multilabel:
        matrix = np.asarray(labels)
        if matrix.ndim != 2 or not np.isin(matrix, (0, 1)).all():
            raise ValueError("multi-label training needs each label to be an equal-length list of 0/1")
        data.check_trainable(matrix, multilabel=True)
        return matrix.astype(np.int64)
    data.check_trainable(labels)
    present = set(labels)
    if model.labels is None:
        try:
            model.labels = sorted(present)
        except TypeError:
            raise TypeError(f"labels mix incomparable types ({sorted({type(y).__name__ for y in present})}); "
                            "use all strings or all ints") from None
    index = {y: i for i, y in enumerate(model.labels)}
    unknown = sorted(map(repr, present - set(index)))
    if unknown:
        raise ValueError(f"training labels {unknown[:5]} are not among the model's labels {model.labels}")
    missing = [y for y in model.labels if y not in present]
    if missing:
        raise ValueError(
            f"labels {missing[:5]} have no training example ({len(model.labels)} classes, "
            f"{len(present)} present): every class needs at least one example"
        )
    return np.asarray([index[y] for y in labels], np.int64)


def _check_lengths(texts: Sequence[str], label_ids: np.ndarray) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of texts, not a single string")
    if len(texts) == 0:
        raise ValueError("training needs at least one text, got none")
    if len(texts) != len(label_ids):
        raise ValueError(f"{len(texts)} texts but {len(label_ids)} label_ids: every text needs its label")


def _check_metric(metric: str | Callable) -> None:
    if not callable(metric) and metric != "accuracy":
        raise ValueError(f"metric={metric!r}: only 'accuracy' or a callable is supported")


class _EmbeddingStep:
    """The jitted stage-1 update for one loss; a fixed packed shape per run."""

    def __init__(self, body: SentenceEncoder, args: TrainingArguments, total_steps: int) -> None:
        self.body = body
        self.args = args
        self.tx = optim.adamw(args.body_embedding_learning_rate, total_steps,
                              warmup_proportion=args.warmup_proportion, weight_decay=args.l2_weight,
                              max_grad_norm=args.max_grad_norm)
        deterministic = not args.dropout
        loss_name = args.loss

        def loss_fn(params, batch, first, second, target, valid, rng):
            emb = self.body.embed(params, batch, deterministic=deterministic, dropout_rng=rng)
            if loss_name == "cosine_similarity":
                return losses.cosine_similarity_loss(emb[first], emb[second], target, valid)
            fn = losses.IN_BATCH_LOSSES[loss_name]
            kwargs = {} if loss_name == "supcon" else {"margin": args.margin}
            return fn(emb, target, valid, **kwargs)

        def step(params, opt_state, batch, first, second, target, valid, rng):
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, first, second, target, valid, rng)
            updates, opt_state = self.tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        self.step = jax.jit(step, donate_argnums=(0, 1))


def _pair_batches(pairs: sampler.Pairs, batch_size: int, seed: int, total_steps: int):
    """Yield index arrays into ``pairs``: epoch-shuffled, last partial batch kept, ``total_steps`` in all."""
    step, epoch = 0, 0
    while step < total_steps:
        order = sampler.epoch_order(len(pairs), seed, epoch)
        for start in range(0, len(order), batch_size):
            if step == total_steps:
                return
            yield order[start: start + batch_size]
            step += 1
        epoch += 1


class Trainer:
    """Train and evaluate a ``SetFitModel`` (the reference's ``setfit.Trainer`` API).

    ``train_dataset``/``eval_dataset``: a list of ``{"text", "label"}`` dicts, a dict of columns,
    a pandas DataFrame, a Hugging Face dataset or a TFDS data source; ``column_mapping`` renames
    columns (``{"my_text": "text", "my_label": "label"}``).
    """

    def __init__(
        self,
        model: SetFitModel,
        args: TrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        metric: str | Callable = "accuracy",
        column_mapping: dict[str, str] | None = None,
    ) -> None:
        if args is not None and not isinstance(args, TrainingArguments):
            raise TypeError("args must be a setfit_jax.TrainingArguments")
        _check_metric(metric)
        self.model = model
        self.args = args or TrainingArguments()
        self.metric = metric
        inverse = {v: k for k, v in (column_mapping or {}).items()}
        self._columns = {"text_column": inverse.get("text", "text"), "label_column": inverse.get("label", "label")}
        self.train_dataset = None if train_dataset is None else data.to_examples(train_dataset, **self._columns)
        self.eval_dataset = (None if eval_dataset is None
                             else data.to_examples(eval_dataset, require_text=False, **self._columns))
        self.history: dict[str, list] = {}

    # -- stage 1 + 2 -----------------------------------------------------------------------------
    def train(self, args: TrainingArguments | None = None) -> dict:
        """Both stages; returns ``{"embedding_loss": [...per step], "embedding_seconds", "classifier_seconds"}``."""
        args = args or self.args
        if self.train_dataset is None:
            raise ValueError("training needs a train_dataset given to Trainer(...)")
        texts, labels = self.train_dataset
        label_ids = encode_labels(self.model, labels)
        t0 = time.perf_counter()
        step_losses = self.train_embeddings(texts, label_ids, args)
        t1 = time.perf_counter()
        self.train_classifier(texts, label_ids, args)
        t2 = time.perf_counter()
        self.history = {"embedding_loss": step_losses, "embedding_seconds": t1 - t0, "classifier_seconds": t2 - t1}
        return self.history

    def train_embeddings(self, texts: Sequence[str], label_ids: np.ndarray, args: TrainingArguments | None = None,
                         pairs: sampler.Pairs | None = None, pair_order: Sequence[np.ndarray] | None = None) -> list[float]:
        """Stage 1. ``pairs``/``pair_order`` override sampling and shuffling (parity tests, distillation)."""
        args = args or self.args
        _check_lengths(texts, label_ids)
        body = self.model.model_body
        ids = body.tokenize(texts)
        bs = args.embedding_batch_size
        if args.loss == "cosine_similarity":
            if pairs is None:
                max_pairs = -1 if args.max_steps == -1 else args.max_steps * bs
                pairs = sampler.PairSampler(label_ids, multilabel=self.model.multilabel,
                                            num_iterations=args.num_iterations,
                                            sampling_strategy=args.sampling_strategy,
                                            max_pairs=max_pairs).sample(args.seed)
            if pair_order is None:
                per_epoch = math.ceil(len(pairs) / bs)
                total = args.max_steps if args.max_steps > 0 else per_epoch * args.embedding_num_epochs
                pair_order = list(_pair_batches(pairs, bs, args.seed, total))
            batches = [(pairs.first[b], pairs.second[b], pairs.target[b]) for b in pair_order]
        else:
            if self.model.multilabel:
                raise ValueError(f"loss={args.loss!r} needs single-label data")
            batches, epoch = [], 0
            while True:
                batches += [(b, None, label_ids[b]) for b in sampler.group_by_label_batches(label_ids, bs, args.seed, epoch)]
                epoch += 1
                if (len(batches) >= args.max_steps) if args.max_steps > 0 else (epoch >= args.embedding_num_epochs):
                    break
            if args.max_steps > 0:
                batches = batches[: args.max_steps]
        if not batches:
            return []
        return self._run_embedding_steps(ids, batches, args)

    def _run_embedding_steps(self, ids: list[list[int]], batches: list, args: TrainingArguments) -> list[float]:
        body = self.model.model_body
        if args.use_amp:
            body = body.with_config(matmul_dtype="bfloat16")
        bs = args.embedding_batch_size
        pair_loss = args.loss == "cosine_similarity"
        slots = 2 * bs if pair_loss else bs
        row_len = body.row_len_for(ids)
        distinct = [np.unique(a if b is None else np.concatenate([a, b])) for a, b, _ in batches]
        rows = max(rows_needed([len(ids[i]) for i in u], row_len) for u in distinct)
        runner = _EmbeddingStep(body, args, len(batches))
        params = jax.tree_util.tree_map(jnp.array, body.params)  # a copy: the step donates its input
        opt_state = runner.tx.init(params)
        # Dropout masks need many random bits per step; XLA's RngBitGenerator ("rbg") makes them
        # several times cheaper on CPU than the default threefry.
        key = jax.random.key(args.seed, impl="rbg")
        out = []
        for step, ((a, b, target), u) in enumerate(zip(batches, distinct)):
            packed = body.pack([ids[i] for i in u], rows, row_len, slots)
            n = len(a)
            valid = np.zeros((bs,), np.float32)
            valid[:n] = 1
            first = np.zeros((bs,), np.int32)
            second = np.zeros((bs,), np.int32)
            tgt = np.zeros((bs,), np.float32 if pair_loss else np.int32)
            first[:n] = np.searchsorted(u, a)
            tgt[:n] = target
            if pair_loss:
                second[:n] = np.searchsorted(u, b)
            else:  # in-batch losses see slots in the order of u; labels follow that order
                tgt = np.zeros((slots,), np.int32)
                tgt[np.searchsorted(u, a)] = target
                valid = packed.slot_valid.astype(np.float32)
            params, opt_state, loss = runner.step(params, opt_state, packed, first, second, tgt,
                                                  valid, jax.random.fold_in(key, step))
            out.append(loss)
        self.model.model_body.params = params
        return [float(x) for x in out]

    def train_classifier(self, texts: Sequence[str], label_ids: np.ndarray, args: TrainingArguments | None = None) -> None:
        """Stage 2: fit the head on the (now fine-tuned) body."""
        args = args or self.args
        _check_lengths(texts, label_ids)
        model = self.model
        if not model.has_differentiable_head:
            model.model_head.fit(model.encode(texts), label_ids)
            model.fitted = True
            return
        num_classes = label_ids.shape[1] if model.multilabel else len(model.labels)
        model.model_head.fit(model.model_body, texts, label_ids, args, num_classes=num_classes,
                             normalize=model.normalize_embeddings)
        model.fitted = True

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, dataset: Any = None) -> dict[str, float]:
        """``{"accuracy": ...}`` (or the callable metric's dict) on ``dataset`` or ``eval_dataset``."""
        if dataset is not None:
            texts, labels = data.to_examples(dataset, require_text=False, **self._columns)
        elif self.eval_dataset is not None:
            texts, labels = self.eval_dataset
        else:
            raise ValueError("no evaluation dataset: pass one to evaluate() or Trainer(eval_dataset=...)")
        model = self.model
        if not model.multilabel and model.labels is not None:
            unseen = sorted(map(repr, set(labels) - set(model.labels)))
            if unseen:
                raise ValueError(f"evaluation labels {unseen[:5]} were never seen in training "
                                 f"(model labels: {model.labels}); accuracy on them would be silently 0")
        _check_metric(self.metric)  # again, before predicting: the attribute may have been replaced since
        pred = model.predict(texts)
        if callable(self.metric):
            result = self.metric(pred, labels)
            return result if isinstance(result, dict) else {"metric": result}
        if model.multilabel:
            return {"accuracy": float(np.mean(np.all(np.asarray(pred) == np.asarray(labels), axis=-1)))}
        return {"accuracy": float(np.mean([p == y for p, y in zip(pred, labels)]))}

