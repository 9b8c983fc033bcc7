"""The pretraining loop: build, restore, step, log, evaluate, checkpoint, export.

    summary = train(config, workdir)

Resuming is automatic: if `workdir/checkpoints` holds a finalized step, the state and the input
pipeline's position are restored from it (onto whatever mesh this run has) and training
continues with exactly the batches an uninterrupted run would have seen. Every restore is verified
against the integrity record saved with the step (`checkpoint.py`): a corrupt newest step stops the
run naming the intact ones, or with `config.restore_fallback` the newest intact step is restored and
the corrupt one kept aside. A new phase starts from another run's weights with `config.init_from`
(its workdir); its optimiser and schedule start fresh.

Continued pretraining of a released checkpoint: `config.init_from` may name a Hugging Face
directory (`inputs.hf_init_dir`: ModernBERT, BERT or any family `hf.SUPPORTED` loads). Its
`config.json` is then the architecture (`checkpoint_model`: the run keeps only its `RUN_FIELDS`,
and a model field set to contradict the checkpoint is an error naming it), its tokenizer tokenizes
the corpus (`inputs.pretraining_data`), and its encoder, MLM head and decoder bias are the starting
weights (a bare encoder gets a fresh head; the decoder is tied to the embeddings either way). A
killed run resumes from its own checkpoints like any other, never from `init_from` again.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
import numpy as np

from modernbert_jax import config as config_lib
from modernbert_jax import hf, hf_families, optim, safe_io, sharding
from modernbert_jax import model as model_lib
from modernbert_jax.train import checkpoint as ckpt_lib
from modernbert_jax.train import inputs, metrics as metrics_lib, state as state_lib, step as step_lib


OPTIMIZERS = ("stable_adamw", "adamw")
FALLBACK_OPTION = "--config.restore_fallback=True"
# Model fields that belong to the run, not to a Hugging Face checkpoint it continues: how it computes,
# regularises and initialises a fresh head. Every other field is the checkpoint's architecture.
RUN_FIELDS = ("attention_impl", "dtype", "matmul_dtype", "remat", "check_inputs", "embedding_dropout",
              "attention_dropout", "mlp_dropout", "initializer_range", "initializer_cutoff_factor")
log = logging.getLogger(__name__)


def make_optimizer(cfg: ml_collections.ConfigDict) -> tuple[optim.Schedule, optax.GradientTransformation]:
    """The config's warmup-stable-decay schedule and optimiser (decay masked off norms and biases).

    ``optimizer.name``: "stable_adamw" (ModernBERT) or "adamw" (BERT's, the ablation: no update
    clipping). optax's AdamW decays by lr_t * wd while StableAdamW's fully decoupled decay is
    lr_t / peak_lr * wd, so AdamW gets wd / peak_lr: the same shrinkage per step, the optimiser
    being the only difference (ModernBERT's 1e-5 at 8e-4 is 0.0125, near BERT's 0.01).
    """
    o = cfg.optimizer
    if o.name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name={o.name!r} is not one of {OPTIMIZERS}")
    schedule = optim.warmup_stable_decay(
        o.peak_lr, cfg.total_steps, warmup_steps=o.warmup_steps, decay_steps=o.decay_steps,
        final_lr_fraction=o.final_lr_fraction, shape=o.decay_shape,
    )
    if o.name == "adamw":
        tx = optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay / o.peak_lr,
                         mask=optim.decay_mask)
    else:
        tx = optim.stable_adamw(
            schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay, max_lr=o.peak_lr,
            mask=optim.decay_mask,
        )
    return schedule, tx


def checkpoint_model(model: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict,
                     hf_dir: os.PathLike) -> ml_collections.ConfigDict:
    """The model block for continuing the Hugging Face checkpoint ``hf_dir``: its ``config.json``'s
    architecture with ``model``'s ``RUN_FIELDS``.

    A field the run set (its ``model`` value differs from the config file's ``defaults``) to another
    value than the checkpoint's is a ValueError naming it: the weights fix the architecture.
    """
    file = os.path.join(hf_dir, hf.CONFIG_FILE)
    try:
        arch = hf_families.config_from_hf(safe_io.read_json(file, required=("model_type",),
                                                            what="a Hugging Face model config"))
    except (KeyError, ValueError) as err:
        raise ValueError(f"init_from={str(hf_dir)!r}: {file}: {err}") from err
    for field, value in model.items():
        if field not in RUN_FIELDS and value != defaults[field] and value != arch[field]:
            raise ValueError(
                f"config.model.{field}={value!r} contradicts init_from={str(hf_dir)!r}, whose config.json gives "
                f"{field}={arch[field]!r}: a Hugging Face checkpoint fixes the architecture (leave model.{field} "
                f"unset; only {', '.join(RUN_FIELDS)} are the run's)")
    return config_lib.replaced(arch, **{f: model[f] for f in RUN_FIELDS})


def _stack(micro_batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([mb[k] for mb in micro_batches]) for k in micro_batches[0]}


class _Batch(NamedTuple):
    """One step's global batch and the input pipeline's position just after it."""

    rows: int
    arrays: dict[str, jax.Array]
    data_state: dict
    packing_efficiency: float


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/Inf loss, gradient or update; nothing from that step was saved."""


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run (or resume) pretraining as configured; returns the last train and eval metrics."""
    cfg = config
    hf_dir = inputs.hf_init_dir(cfg.init_from)
    if hf_dir is not None:
        cfg = config.copy_and_resolve_references()
        cfg.model = checkpoint_model(config.model, config.model_defaults, hf_dir)
        cfg.data.vocab_size = cfg.model.vocab_size  # the checkpoint's vocabulary, not a size to train
    config_lib.validate_pretraining(cfg)
    os.makedirs(workdir, exist_ok=True)
    mesh = sharding.make_mesh(cfg.mesh)
    rules = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in cfg.sharding_rules)
    # Batches are checked on the host as the pipeline yields them (`_checked`); the compiled steps
    # hold no host callback (`model_lib.checked_on_host`).
    module = model_lib.MaskedLM(model_lib.checked_on_host(cfg.model))
    schedule, tx = make_optimizer(cfg)
    seq_len = cfg.seq_len
    micro_rows = cfg.micro_batch_size
    rows_at = optim.batch_size_warmup(
        cfg.batch_warmup_start or cfg.batch_size, cfg.batch_size, cfg.batch_warmup_tokens, micro_rows
    )

    data = inputs.pretraining_data(cfg.data, cfg.init_from)
    train_docs, eval_docs, tokenizer = data.train, data.validation, data.tokenizer
    if tokenizer.vocab_size > cfg.model.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} pieces > model.vocab_size={cfg.model.vocab_size}")
    pipeline = inputs.make_pipeline(cfg.data, train_docs, tokenizer, batch_size=micro_rows, seq_len=seq_len,
                                    seed=cfg.seed, train=True)

    with sharding.activate(mesh, rules):
        p_shard = sharding.param_shardings(module, mesh, rules, jnp.zeros((1, seq_len), jnp.int32))
        s_shard = state_lib.state_shardings(module, tx, p_shard, mesh, seq_len)
        train_batch_sharding = inputs.batch_sharding(mesh, rules, leading=1)
        eval_batch_sharding = inputs.batch_sharding(mesh, rules, leading=0)

        checkpointer = ckpt_lib.Checkpointer(
            os.path.join(workdir, "checkpoints"), every=cfg.checkpoint_every, keep=cfg.keep_checkpoints
        )
        writer = bar = None
        try:
            abstract = state_lib.abstract_state(module, tx, s_shard, seq_len)
            state, tokens_seen = _restore_or_init(cfg, module, tx, s_shard, abstract, checkpointer, pipeline)
            use_dropout = any(cfg.model[f] > 0 for f in ("embedding_dropout", "attention_dropout", "mlp_dropout"))
            train_step = jax.jit(
                step_lib.make_train_step(module, tx, schedule, seed=cfg.seed, use_dropout=use_dropout),
                in_shardings=(s_shard, train_batch_sharding), out_shardings=(s_shard, None), donate_argnums=(0,),
            )
            eval_step = jax.jit(step_lib.make_eval_step(module), in_shardings=(p_shard, eval_batch_sharding))
            writer = metrics_lib.MetricsWriter(workdir)
            throughput = _Throughput(cfg, state.params)
            start_step = int(state.step)
            bar = _progress_bar(cfg, start_step)
            last_train, last_eval = {}, {}

            def next_batch(tokens: int) -> _Batch:
                rows = rows_at(tokens)
                micro = [_checked(cfg, pipeline.next_batch(micro_rows)) for _ in range(rows // micro_rows)]
                arrays = inputs.to_global(_stack(micro), train_batch_sharding, micro_rows, row_axis=1)
                # The pipeline's position *after* this batch: what a checkpoint of this step stores.
                return _Batch(rows, arrays, pipeline.get_state(), pipeline.packing_efficiency)

            upcoming = next_batch(tokens_seen) if start_step < cfg.total_steps else None
            for step in range(start_step, cfg.total_steps):
                t0 = time.perf_counter()
                current = upcoming
                rows = current.rows
                state, m = train_step(state, current.arrays)  # dispatched asynchronously
                tokens_seen += rows * seq_len
                # Prepare the next batch on the host while the device runs this step.
                upcoming = next_batch(tokens_seen) if step + 1 < cfg.total_steps else None
                m = jax.device_get(m)
                if not bool(m["finite"]):
                    checkpointer.wait()
                    del state  # non-finite now; frees device memory for reading the checkpoints back
                    intact = checkpointer.newest_intact(abstract)
                    raise NonFiniteLossError(
                        f"non-finite loss/gradient at step {step + 1} (loss={float(m['loss'])}, grad_norm="
                        f"{float(m['grad_norm'])}); stopping. Newest intact checkpoint (read back and verified) in "
                        f"{checkpointer.directory}: {'none' if intact is None else f'step {intact}'}"
                    )
                # The first step of a run includes compilation: leave it out of the throughput.
                throughput.add(m, rows, time.perf_counter() - t0, count=step > start_step)
                done = step + 1
                if done % cfg.log_every == 0 or done == cfg.total_steps:
                    last_train = {k: float(m[k]) for k in ("loss", "accuracy", "grad_norm", "learning_rate")}
                    last_train.update(batch_rows=rows, tokens_seen=tokens_seen,
                                      packing_efficiency=current.packing_efficiency, **throughput.report())
                    writer.write(done, "train", last_train)
                if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.total_steps):
                    last_eval = _evaluate(cfg, eval_step, state.params, eval_docs, tokenizer, eval_batch_sharding)
                    writer.write(done, "eval", last_eval)
                    _console(bar, f"step {done}: train loss {float(m['loss']):.3f} | validation loss "
                                  f"{last_eval['loss']:.3f}, MLM accuracy {last_eval['accuracy']:.3f}")
                checkpointer.save(
                    done, state, {"step": done, "tokens_seen": tokens_seen, "data_state": current.data_state},
                    force=done == cfg.total_steps,
                )
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(m['loss']):.3f}", acc=f"{float(m['accuracy']):.3f}",
                                    eval_acc=f"{last_eval.get('accuracy', float('nan')):.3f}")
            if start_step >= cfg.total_steps:
                # Finished before (killed after its last checkpoint, or rerun): report what it logged then.
                last_train, last_eval = _logged_at(workdir, cfg.total_steps)
            checkpointer.wait()
            _console(bar, f"checkpoint step {checkpointer.latest_step()} in {checkpointer.directory}")
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
            checkpointer.close()

    # Only reached with a state that was restored and verified (or trained here): a checkpoint that
    # fails verification raises in _restore_or_init, before anything is written to hf/.
    if cfg.export_hf:
        _export_hf(os.path.join(workdir, "hf"), module, state.params, tokenizer)
    return {"train": last_train, "eval": last_eval, "step": int(state.step), "tokens_seen": tokens_seen}


def _logged_at(workdir: str, step: int) -> tuple[dict, dict]:
    """The last train and eval records that ``workdir/metrics.jsonl`` holds for ``step``."""
    path = os.path.join(workdir, "metrics.jsonl")
    records = metrics_lib.read_jsonl(path) if os.path.exists(path) else []
    last = {r["split"]: r for r in records if r["step"] == step}
    return tuple({k: v for k, v in last.get(split, {}).items() if k not in ("step", "split")} for split in ("train", "eval"))


def _export_hf(path: str, module, params, tokenizer) -> None:
    """Write the final weights and tokenizer as a Hugging Face directory (rewritten on every completed run).

    Every process takes part in gathering the (possibly cross-host sharded) params; process 0 writes.
    """
    from jax.experimental import multihost_utils

    host_params = multihost_utils.process_allgather(params, tiled=True)
    if jax.process_index() == 0:
        tokenizer.save_hf(hf.save_pretrained(path, module, host_params, overwrite=True))


def _restore_or_init(cfg, module, tx, shardings, abstract, checkpointer, pipeline) -> tuple[state_lib.TrainState, int]:
    """Resume from this run's newest intact checkpoint, else initialise (from `init_from`'s weights if set).

    A corrupt newest step stops the run naming the intact ones, unless ``restore_fallback``: then
    the newest intact step is restored and the corrupt ones are renamed ``<step>.corrupt`` (kept,
    and out of the way of this run's saves of the same steps).
    """
    restored = checkpointer.restore_latest(abstract, fallback=cfg.restore_fallback,
                                           fallback_option=FALLBACK_OPTION)
    if restored is not None:
        for step, why in restored.skipped.items():
            kept = checkpointer.set_aside(step)
            log.warning("SKIPPED corrupt checkpoint step %d (moved to %s): %s", step, kept, why)
        if restored.skipped:
            log.warning("resuming from step %d, the newest intact checkpoint (restore_fallback=True)", restored.step)
        pipeline.set_state(restored.progress["data_state"])
        return restored.state, int(restored.progress["tokens_seen"])
    state = state_lib.init_state(module, tx, jax.random.key(cfg.seed), shardings, cfg.seq_len)
    hf_dir = inputs.hf_init_dir(cfg.init_from)
    if hf_dir is not None:
        state = state.replace(params=_hf_weights(hf_dir, state.params, abstract.params))
    elif cfg.init_from:
        state = state.replace(params=_weights_from(cfg.init_from, abstract, fallback=cfg.restore_fallback))
    return state, 0


def _hf_weights(hf_dir, fresh: Any, abstract: Any) -> Any:
    """A Hugging Face checkpoint's weights laid out like ``abstract``: the encoder, and the MLM head and
    decoder bias when it has them (a ``...ForMaskedLM``), else ``fresh``'s head (this run's seed)."""
    hf_config = safe_io.read_json(os.path.join(hf_dir, hf.CONFIG_FILE), what="a Hugging Face model config")
    architectures = hf_config.get("architectures") or []
    with_head = any(a.endswith("ForMaskedLM") for a in architectures)
    # Host-side reading, off the run's mesh: under it, flax would constrain the loader's abstract shapes.
    with jax.set_mesh(None):
        _, host = hf.from_pretrained(hf_dir, head="mlm" if with_head else None)
    if with_head:
        _console(None, f"init_from {hf_dir}: encoder, MLM head and decoder bias from the checkpoint")
        return _placed(abstract, host)
    _console(None, f"init_from {hf_dir}: encoder from the checkpoint ({', '.join(architectures) or 'no architectures'}"
                   ": no MLM head); head and decoder bias initialised fresh, decoder tied to the embeddings")
    return {**fresh, "encoder": _placed(abstract["encoder"], host)}


def _placed(abstract: Any, host: Any) -> Any:
    """Host arrays as global arrays with ``abstract``'s shardings (each process builds its own shards)."""
    return jax.tree.map(lambda a, x: jax.make_array_from_callback(a.shape, a.sharding, lambda i: np.asarray(x)[i]),
                        abstract, host)


class _Throughput:
    """Real (non-padding) tokens per second between log points, and the MFU they imply."""

    def __init__(self, cfg, params):
        self.cfg, self.params = cfg, params
        self.peak = metrics_lib.peak_flops_per_device(cfg.peak_flops_per_device)
        self.flops_per_token = None
        self.tokens = self.seconds = 0.0

    def add(self, m, rows: int, seconds: float, *, count: bool) -> None:
        if self.flops_per_token is None:
            masked_fraction = float(m["targets"]) / (rows * self.cfg.seq_len)
            self.flops_per_token = metrics_lib.train_flops_per_token(
                self.params, self.cfg.model, self.cfg.seq_len, masked_fraction
            )
        if count:
            self.tokens += float(m["tokens"])
            self.seconds += seconds

    def report(self) -> dict[str, float]:
        out = {}
        if self.seconds:
            out["tokens_per_sec"] = self.tokens / self.seconds
            if self.peak:
                out["mfu"] = out["tokens_per_sec"] * self.flops_per_token / (self.peak * jax.device_count())
        self.tokens = self.seconds = 0.0
        return out


def _weights_from(init_from: str, abstract: state_lib.TrainState, *, fallback: bool) -> Any:
    """Params of the newest intact checkpoint of a previous phase's workdir, resharded onto this mesh
    (a corrupt newest step: an error, or with `fallback` the newest intact one; that workdir is only read)."""
    directory = os.path.join(init_from, "checkpoints")
    if not os.path.isdir(directory):
        raise ckpt_lib.CheckpointError(f"init_from={init_from!r}: no checkpoints directory {directory} "
                                       "(nor a Hugging Face config.json)")
    source = ckpt_lib.Checkpointer(directory, every=1, keep=1 << 30, async_save=False)
    try:
        restored = source.restore_latest(abstract, fallback=fallback, fallback_option=FALLBACK_OPTION)
        if restored is None:
            raise ckpt_lib.CheckpointError(f"init_from={init_from!r}: {directory} holds no finalized checkpoint")
        for step, why in restored.skipped.items():
            log.warning("init_from: SKIPPED corrupt checkpoint step %d: %s", step, why)
    finally:
        source.close()
    return restored.state.params


def _checked(cfg: ml_collections.ConfigDict, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``batch`` after the model's index checks on the host (unless ``model.check_inputs`` is off)."""
    if cfg.model.check_inputs:
        model_lib.check_encoder_inputs(cfg.model, batch["input_ids"], batch["segment_ids"], batch["positions"])
        model_lib.check_masked_positions(batch["masked_positions"], batch["input_ids"].shape[-1])
    return batch


def _evaluate(cfg, eval_step, params, eval_docs, tokenizer, sharding) -> dict[str, float]:
    """MLM loss and accuracy at the eval masking rate over a fixed set of validation batches."""
    pipeline = inputs.make_pipeline(cfg.data, eval_docs, tokenizer, batch_size=cfg.eval_batch_size,
                                    seq_len=cfg.seq_len, seed=cfg.seed + 1, train=False)
    totals = {"loss_sum": 0.0, "correct": 0.0, "targets": 0.0}
    for _ in range(cfg.eval_batches):
        try:
            local = _checked(cfg, pipeline.next_batch())
        except StopIteration:
            break
        sums = jax.device_get(eval_step(params, inputs.to_global(local, sharding, cfg.eval_batch_size, row_axis=0)))
        for k in totals:
            totals[k] += float(sums[k])
    targets = max(totals["targets"], 1.0)
    return {"loss": totals["loss_sum"] / targets, "accuracy": totals["correct"] / targets}


def _console(bar, message: str) -> None:
    """A line above the progress bar (or plain stdout without one), from process 0 only."""
    if jax.process_index() != 0:
        return
    if bar is not None:
        bar.write(message)
    else:
        print(message, flush=True)


def _progress_bar(cfg, start_step: int):
    if not cfg.progress_bar or jax.process_index() != 0:
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.total_steps, initial=start_step, desc=f"pretrain[{cfg.phase}]", unit="step")
