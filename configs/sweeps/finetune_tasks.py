"""Fine-tuning results table: every task x backbone (all-MiniLM-L6-v2, our pretrained ModernBERT), 3 seeds (issue 15).

    # the ModernBERT backbone: the demo pretraining run (tiny model, 300 steps on the offline corpus)
    python -m experiments.run_point --entry=pretrain --config=configs/pretrain.py:variant=demo \
        --config.progress_bar=false --workdir=DIR/backbone
    python -m experiments.sweep --config=configs/sweeps/finetune_tasks.py:modernbert=DIR/backbone \
        --workdir=DIR --results_dir=experiments/results/finetune_tasks

Each point is ``finetune_jax.loop.train`` with ``configs/finetune.py``'s recipe for its task:
validation after every epoch, the test split scored at the best epoch, training time without
evaluation. A row's metric is its task's own (``TASKS[task].metric``: accuracy, entity F1,
nDCG@10), in that task's column; the others stay empty. The side-by-side with transformers'
``Trainer`` is ``experiments.bench_finetune`` (one JSON per task), the BM25 floor of code search
is ``finetune_jax.retrieval.bm25``. ``arg`` keys: ``modernbert`` (the pretraining workdir or HF
directory), ``epochs`` (0: the config's), ``seeds`` (3), ``max_train`` / ``max_eval`` (fixed
subsamples of the train / evaluation splits, ``tasks.subsample``; 0: whole splits), ``batch_size``
(0: the config's), ``lr`` (the classification and token tasks' peak learning rate; retrieval keeps
the config's; 0: the config's).
"""

import ml_collections

from finetune_jax import tasks
from modernbert_jax import config as config_lib
from modernbert_jax import sweep

BACKBONES = (("all-MiniLM-L6-v2", "minilm"), ("our ModernBERT (tiny, demo pretraining)", "dir"))
# Each task's own test metric, a second one of the kinds that have it (empty elsewhere), the training record.
TEST_METRICS = tuple(dict.fromkeys(f"metrics.test.{task.metric}" for task in tasks.TASKS.values()))
MORE_METRICS = ("metrics.test.macro_f1", "metrics.test.mrr@10", "train.seconds", "train.seconds_per_step",
                "train.steps", "best_epoch")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, modernbert="", epochs=0, seeds=3, max_train=0, max_eval=0, lr=0.0, batch_size=0)
    if not args.modernbert:
        raise ValueError("finetune_tasks needs modernbert=<pretraining workdir or HF directory>")
    cfg = ml_collections.ConfigDict()
    cfg.base = "configs/finetune.py"
    cfg.entry = "finetune"
    train = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v}
    cfg.fixed = {"progress_bar": False, **({"train": train} if train else {}),
                 "data": {"max_train_examples": args.max_train, "max_eval_examples": args.max_eval}}
    points = []
    for task in tasks.TASKS.values():
        for label, backbone in BACKBONES:
            path = {"backbone_path": args.modernbert} if backbone == "dir" else {}
            # A retrieval backbone is already a sentence encoder: ``lr`` is for the heads trained from scratch.
            lr = {"train.learning_rate": args.lr} if args.lr and task.kind != "retrieval" else {}
            points.append({"label": f"{task.name} ({task.metric}), {label}", "task": task.name,
                           "backbone": backbone, **path, **lr})
    # Seed-major: every row's first seed before any second seed, so a sweep cut short still fills the table.
    cfg.points = sweep.product(sweep.sweep(sweep.SEED, range(args.seeds)), points)
    cfg.metrics = (*TEST_METRICS, *MORE_METRICS)  # no figure: one bar chart cannot share a task's axis
    return cfg
