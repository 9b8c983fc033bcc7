"""Public arguments are checked where they enter, with errors naming the argument and its range;
empty inputs give empty outputs of the right shape (SetFit, model and pretraining configs,
schedules, CLI flags)."""

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modernbert_jax import config as config_lib, optim
from modernbert_jax.train import loop
from setfit_jax import PairSampler, SetFitModel, Trainer, TrainingArguments, data, fewshot, heads, sampler
from setfit_jax.trainer import encode_labels
from test_setfit_pipeline import tiny_modernbert

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["arcade game", "space shooter game", "mail client", "spam filter for mail"]
LABELS = ["games", "games", "mail", "mail"]
MULTI = [[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]]


# -- empty inputs -> empty outputs ----------------------------------------------------------------
# The scikit-learn heads (the differentiable head already answered no texts with empty arrays).
HEADS = {  # name -> (SetFitModel kwargs, training labels)
    "logistic": ({}, LABELS),
    "one-vs-rest": ({"multi_target_strategy": "one-vs-rest"}, MULTI),
    "multi-output": ({"multi_target_strategy": "multi-output"}, MULTI),
    "classifier-chain": ({"multi_target_strategy": "classifier-chain"}, MULTI),
}


@pytest.fixture(scope="module")
def unfitted():
    return tiny_modernbert(num_layers=1)


@pytest.fixture(scope="module", params=sorted(HEADS))
def fitted(request, unfitted):
    kwargs, labels = HEADS[request.param]
    model = SetFitModel(unfitted.model_body, **kwargs)  # one body: its encoder compiles once
    # Only the head is fitted: stage 1 is not what these tests are about.
    trainer = Trainer(model, args=TrainingArguments(num_epochs=1, batch_size=4, seed=0))
    trainer.train_classifier(TEXTS, encode_labels(model, labels))
    return model


def test_empty_texts_give_empty_outputs(fitted):
    one_proba = fitted.predict_proba(TEXTS[:1])
    one = np.asarray(fitted.predict(TEXTS[:1], use_labels=False))
    proba = fitted.predict_proba([])
    assert proba.shape == (0,) + one_proba.shape[1:] and proba.dtype == one_proba.dtype
    ids = np.asarray(fitted.predict([], use_labels=False))
    assert ids.shape == (0,) + one.shape[1:] and ids.dtype == one.dtype
    emb = fitted.encode([])
    assert emb.shape == (0, fitted.model_body.dim) and emb.dtype == np.float32
    if fitted.multilabel:
        assert np.asarray(fitted([])).shape == (0, one.shape[1])
    else:
        assert fitted.predict([]) == [] and fitted([]) == []


# -- bad arguments -> an error naming the argument --------------------------------------------------
TRAINING_ARGUMENTS = [
    (dict(body_learning_rate=-2e-5), r"body_learning_rate\[0\]=-2e-05 must be a number > 0"),
    (dict(body_learning_rate=(2e-5, 0.0)), r"body_learning_rate\[1\]=0.0 must be a number > 0"),
    (dict(body_learning_rate=(1e-5, 1e-5, 1e-5)), r"body_learning_rate=.* must be one value or an \(embedding, "),
    (dict(head_learning_rate=-0.01), r"head_learning_rate=-0.01 must be a number > 0"),
    (dict(head_learning_rate=math.inf), r"head_learning_rate=inf must be a number > 0"),
    (dict(num_epochs=-1), r"num_epochs\[0\]=-1 must be an integer >= 1"),
    (dict(num_epochs=(1, 0)), r"num_epochs\[1\]=0 must be an integer >= 1"),
    (dict(batch_size=2.5), r"batch_size\[0\]=2.5 \(float\) must be an integer >= 1"),
    (dict(num_iterations=-3), r"num_iterations=-3 must be an integer >= 1"),
    (dict(margin=-0.25), r"margin=-0.25 must be a number >= 0"),
    (dict(l2_weight=-0.01), r"l2_weight=-0.01 must be a number >= 0"),
    (dict(max_grad_norm=-1.0), r"max_grad_norm=-1.0 must be a number >= 0"),
    (dict(seed=-1), r"seed=-1 must be an integer >= 0"),
    (dict(max_length=0), r"max_length=0 must be an integer >= 1"),
    (dict(end_to_end="no"), r"end_to_end='no' must be True or False"),
]


@pytest.mark.parametrize("kwargs,message", TRAINING_ARGUMENTS, ids=lambda x: str(x) if isinstance(x, dict) else "")
def test_training_arguments_name_the_bad_field(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TrainingArguments(**kwargs)


SETFIT_CALLS = {  # id -> (call(model), error type, message)
    "max_seq_length=0": (lambda m: SetFitModel.from_encoder(m.model_body.module, m.model_body.params,
                                                            m.model_body.tokenizer, max_seq_length=0),
                         ValueError, r"max_seq_length=0 must be an integer in \[1, 1024\]"),
    "max_seq_length over the positions": (
        lambda m: SetFitModel.from_encoder(m.model_body.module, m.model_body.params, m.model_body.tokenizer,
                                           max_seq_length=2048),
        ValueError, r"max_seq_length=2048 must be an integer in \[1, 1024\]"),
    "tokenize max_length=0": (lambda m: m.model_body.tokenize(TEXTS, max_length=0),
                              ValueError, r"max_length=0 must be an integer >= 1"),
    "encode tokens_per_call=0": (lambda m: m.model_body.encode(TEXTS, tokens_per_call=0),
                                 ValueError, r"tokens_per_call=0 must be an integer >= 1"),
    "encode a bare string": (lambda m: m.encode("arcade game"), TypeError, r"encode takes a list of texts"),
    "predict None": (lambda m: m.predict(None), TypeError, r"predict takes a list of texts, got NoneType"),
    "duplicate labels": (lambda m: SetFitModel(m.model_body, labels=["a", "b", "a"]),
                         ValueError, r"labels=\['a', 'b', 'a'\] must be distinct"),
    "empty labels": (lambda m: SetFitModel(m.model_body, labels=[]), ValueError, r"labels=\[\] must be distinct"),
    "metric name": (lambda m: Trainer(m, metric="f1"), ValueError, r"metric='f1': only 'accuracy' or a callable"),
    "train_classifier length mismatch": (lambda m: Trainer(m).train_classifier(TEXTS, np.array([0, 1, 0])),
                                         ValueError, r"4 texts but 3 label_ids"),
    "train_embeddings no texts": (lambda m: Trainer(m).train_embeddings([], np.zeros(0, np.int64)),
                                  ValueError, r"training needs at least one text"),
    "columns of unequal length": (lambda m: Trainer(m, train_dataset={"text": TEXTS, "label": LABELS[:3]}),
                                  ValueError, r"4 'text' values but 3 'label' values"),
}


@pytest.mark.parametrize("name", sorted(SETFIT_CALLS))
def test_setfit_calls_name_the_bad_argument(unfitted, name):
    call, error, message = SETFIT_CALLS[name]
    with pytest.raises(error, match=message):
        call(unfitted)


PURE_CALLS = {  # id -> (call, message)
    "head temperature=0": (lambda: heads.DifferentiableHead(8, 2, temperature=0.0),
                           r"temperature=0.0 must be a number > 0"),
    "head in_features=0": (lambda: heads.DifferentiableHead(0, 2), r"in_features=0 must be an integer >= 1"),
    "step_decay lr<0": (lambda: heads.step_decay(-1e-2, 3), r"learning_rate=-0.01 must be a number > 0"),
    "sampler num_iterations<0": (lambda: PairSampler([0, 1, 1], num_iterations=-2), r"num_iterations .*=-2 must be"),
    "sampler max_pairs=1": (lambda: PairSampler([0, 1, 1], max_pairs=1), r"max_pairs .*=1 must be an integer >= 2"),
    "sampler exact_limit=0": (lambda: PairSampler([0, 1, 1], exact_limit=0), r"exact_limit=0 must be an integer >= 1"),
    "distillation non-square": (lambda: sampler.distillation_pairs(np.zeros((3, 2))),
                                r"teacher_similarity must be a square \[n, n\] matrix, got shape \(3, 2\)"),
    "sample_per_class num_samples=0": (lambda: data.sample_per_class(LABELS, 0, seed=0),
                                       r"num_samples=0 must be an integer >= 1"),
    "sample_per_class seed<0": (lambda: data.sample_per_class(LABELS, 2, seed=-1), r"seed=-1 must be an integer >= 0"),
    "schedule peak_lr<0": (lambda: optim.warmup_stable_decay(-8e-4, 10), r"peak_lr=-0.0008 must be a number > 0"),
    "schedule final_lr_fraction>1": (lambda: optim.warmup_stable_decay(8e-4, 10, 0, 5, final_lr_fraction=2.0),
                                     r"final_lr_fraction=2.0 must be a number in \[0, 1\]"),
    "schedule total_steps float": (lambda: optim.warmup_stable_decay(8e-4, 10.5),
                                   r"total_steps=10.5 \(float\) must be"),
    "warmup_steps_for total<0": (lambda: optim.warmup_steps_for(-10, 0.1), r"total_steps=-10 must be an integer >= 0"),
    "stable_adamw weight_decay<0": (lambda: optim.stable_adamw(1e-3, weight_decay=-1e-5),
                                    r"weight_decay=-1e-05 must be a number >= 0"),
    "batch warmup micro=0": (lambda: optim.batch_size_warmup(8, 16, 100, micro_batch_rows=0),
                             r"micro_batch_rows=0 must be an integer >= 1"),
    "batch warmup tokens<0": (lambda: optim.batch_size_warmup(8, 16, -100, micro_batch_rows=8),
                              r"warmup_tokens=-100 must be an integer >= 0"),
}


@pytest.mark.parametrize("name", sorted(PURE_CALLS))
def test_library_calls_name_the_bad_argument(name):
    call, message = PURE_CALLS[name]
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("fields,message", [(dict(num_classes=-1), r"config.num_classes .*=-1 must be an integer >= 0"),
                                            (dict(seeds=[-1]), r"config.seeds\[0\]=-1 must be an integer >= 0")],
                         ids=["num_classes", "seeds"])
def test_fewshot_protocol_names_the_bad_field(fields, message, tmp_path):
    cfg = config_lib.load_config("configs/setfit.py:demo=true")
    with cfg.unlocked():
        cfg.update(fields)
    with pytest.raises(ValueError, match=message):
        fewshot.run_protocol(cfg, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # rejected before the workdir is claimed


MODEL_FIELDS = [
    ("num_heads", 0, r"model.num_heads=0 must be an integer >= 1"),
    ("hidden_size", -128, r"model.hidden_size=-128 must be an integer >= 1"),
    ("num_layers", 0, r"model.num_layers=0 must be an integer >= 1"),
    ("intermediate_size", 0, r"model.intermediate_size=0 must be an integer >= 1"),
    ("vocab_size", 0, r"model.vocab_size=0 must be an integer >= 1"),
    ("max_position_embeddings", 0, r"model.max_position_embeddings=0 must be an integer >= 1"),
    ("type_vocab_size", -1, r"model.type_vocab_size=-1 must be an integer >= 0"),
    ("global_attn_every_n_layers", 0, r"model.global_attn_every_n_layers=0 must be an integer >= 1"),
    ("embedding_dropout", 1.0, r"model.embedding_dropout=1.0 must be a number in \[0, 1\)"),
    ("attention_dropout", -0.1, r"model.attention_dropout=-0.1 must be a number in \[0, 1\)"),
    ("mlp_dropout", math.nan, r"model.mlp_dropout=nan must be a number in \[0, 1\)"),
    ("global_rope_theta", -1.0, r"model.global_rope_theta=-1.0 must be a number > 0"),
    ("norm_eps", 0.0, r"model.norm_eps=0.0 must be a number > 0"),
    ("initializer_range", -0.02, r"model.initializer_range=-0.02 must be a number > 0"),
    ("pad_token_id", 8192, r"model.pad_token_id=8192 must be in \[0, model.vocab_size=8192\)"),
]


@pytest.mark.parametrize("field,value,message", MODEL_FIELDS, ids=lambda x: str(x))
def test_model_config_names_the_bad_field(field, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        config_lib.replaced(config_lib.model_config("tiny"), **{field: value})


PRETRAIN_FIELDS = [
    ("optimizer.peak_lr", -8e-4, r"config.optimizer.peak_lr=-0.0008 must be a number > 0"),
    ("optimizer.b2", 1.0, r"config.optimizer.b2=1.0 must be a number in \[0, 1\)"),
    ("optimizer.warmup_steps", -1, r"config.optimizer.warmup_steps=-1 must be an integer >= 0"),
    ("optimizer.decay_steps", 500, r"warmup_steps=10 \+ config.optimizer.decay_steps=500 must be <= "
                                   r"config.total_steps=200"),
    ("total_steps", 0, r"config.total_steps=0 must be an integer >= 1"),
    ("seq_len", -128, r"config.seq_len=-128 must be an integer >= 1"),
    ("seq_len", 4096, r"config.seq_len=4096 exceeds the model's 1024 positions"),
    ("batch_size", 12, r"config.batch_size=12 must be a multiple of config.micro_batch_size=8"),
    ("micro_batch_size", 0, r"config.micro_batch_size=0 must be an integer >= 1"),
    ("data.mask_rate", 1.5, r"config.data.mask_rate=1.5 must be a number in \(0, 1\)"),
    ("data.eval_mask_rate", 0.0, r"config.data.eval_mask_rate=0.0 must be a number in \(0, 1\)"),
    ("data.vocab_size", 10_000, r"config.data.vocab_size=10000 .* must be <= config.model.vocab_size=4096"),
    ("checkpoint_every", 0, r"config.checkpoint_every=0 must be an integer >= 1"),
    ("keep_checkpoints", -1, r"config.keep_checkpoints=-1 must be an integer >= 1"),
    ("log_every", 0, r"config.log_every=0 must be an integer >= 1"),
    ("eval_every", -50, r"config.eval_every=-50 must be an integer >= 0"),
    ("seed", -1, r"config.seed=-1 must be an integer >= 0"),
]


@pytest.mark.parametrize("field,value,message", PRETRAIN_FIELDS, ids=lambda x: str(x))
def test_pretraining_config_names_the_bad_field(field, value, message, tmp_path):
    cfg = config_lib.load_config("configs/pretrain.py:variant=tiny")
    *parents, leaf = field.split(".")
    block = cfg
    for part in parents:
        block = block[part]
    block[leaf] = value
    workdir = tmp_path / "run"
    with pytest.raises((ValueError, TypeError), match=message):
        loop.train(cfg, str(workdir))
    assert not workdir.exists()  # checked before anything is built or written


# -- CLI flags ------------------------------------------------------------------------------------
def _numeric_flags_without_bounds(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    validated = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "attr", "") == "register_validator" and node.args
                 and isinstance(node.args[0], ast.Constant)}
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("DEFINE_integer", "DEFINE_float"):
            name = node.args[0].value
            if name not in validated and not any(k.arg in ("lower_bound", "upper_bound") for k in node.keywords):
                missing.append(f"{path.name}: --{name}")
    return missing


def test_every_numeric_cli_flag_is_bounded():
    missing = [m for path in sorted((ROOT / "experiments").glob("*.py")) for m in _numeric_flags_without_bounds(path)]
    assert not missing, f"numeric flags that accept any value: {missing}"


@pytest.mark.parametrize("flag,message", [("--workers=0", "flag --workers=0: 0 is not a positive integer"),
                                          ("--point_timeout_s=-1", "flag --point_timeout_s=-1.0: must be > 0")])
def test_cli_rejects_a_bad_count_naming_the_flag(flag, message, tmp_path):
    workdir = tmp_path / "sweep"
    run = subprocess.run([sys.executable, "-m", "experiments.sweep", "--config=configs/sweeps/tiny_pretrain.py",
                          f"--workdir={workdir}", flag], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and message in run.stderr
    assert not workdir.exists()  # absl stops before main
