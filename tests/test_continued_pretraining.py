"""Continued pretraining of a released checkpoint: the real all-MiniLM-L6-v2 (a BERT), its own tokenizer.

One short ``phase=decay`` run (``init_from`` = the MiniLM directory) on real English prose, the
docstrings of standard-library modules written to two JSONL files, is shared by the tests: the MLM
loss falls, the ``hf/`` export loads in ``transformers`` with the same logits, and a killed run
resumes from its own checkpoint. The tokenizer adapter is compared with ``transformers``'
``AutoTokenizer`` on the same directory.
"""

import importlib
import inspect
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from modernbert_jax import hf
from modernbert_jax.config import load_config
from modernbert_jax.data.hf_tokenizer import HFTokenizer
from modernbert_jax.train import loop
from modernbert_jax.train.metrics import read_jsonl
from setfit_jax.fewshot import minilm_path

STEPS = 6
TEXT = "the json module encodes python objects as json strings, and decodes them again."
# Real prose: the documentation of these modules (their docstrings), one JSONL file per group.
MODULE_GROUPS = (("json", "argparse", "textwrap", "shutil"), ("collections", "pathlib", "subprocess", "logging"))


def docstrings(modules: tuple[str, ...]) -> list[str]:
    """The longer docstrings of the modules and their own classes and functions, sorted."""
    found = set()
    for name in modules:
        module = importlib.import_module(name)
        for obj in [module, *(v for _, v in inspect.getmembers(module, lambda v: inspect.isclass(v) or inspect.isfunction(v))
                              if getattr(v, "__module__", "").startswith(name))]:
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 200:
                found.add(doc)
    return sorted(found)


def make_config(tmp: Path, **extra):
    files = []
    for i, group in enumerate(MODULE_GROUPS):
        files.append(tmp / f"docs{i}.jsonl")
        files[-1].write_text("".join(json.dumps({"text": t}) + "\n" for t in docstrings(group)), encoding="utf-8")
    cfg = load_config("configs/pretrain.py:variant=tiny,phase=decay")
    fields = {"init_from": str(minilm_path()), "data.files": ",".join(map(str, files)),
              "data.validation_fraction": 0.2, "seq_len": 64, "micro_batch_size": 8, "batch_size": 8,
              "total_steps": STEPS, "optimizer.peak_lr": 1e-3, "log_every": 1, "eval_every": 0,
              "checkpoint_every": STEPS, "progress_bar": False, **extra}
    for key, value in fields.items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("continued")
    cfg = make_config(tmp)
    summary = loop.train(cfg, str(tmp / "work"))
    return cfg, tmp / "work", summary


def test_tokenizer_adapter_matches_transformers():
    from transformers import AutoTokenizer

    ours, theirs = HFTokenizer.load(minilm_path()), AutoTokenizer.from_pretrained(str(minilm_path()))
    assert (ours.cls_id, ours.sep_id, ours.mask_id, ours.pad_id) == (
        theirs.cls_token_id, theirs.sep_token_id, theirs.mask_token_id, theirs.pad_token_id)
    # Every special token is kept out of masking and of the random replacement.
    assert set(ours.special_ids) == set(theirs.all_special_ids)
    ids = ours.encode_batch([TEXT])[0]
    assert ids == theirs(TEXT, add_special_tokens=False)["input_ids"]
    assert ours.decode(ids) == TEXT
    # A tokenizer.json path is the same tokenizer.
    assert HFTokenizer.load(Path(minilm_path()) / "tokenizer.json").encode_batch([TEXT])[0] == ids


def test_loss_falls_from_the_checkpoint(run):
    _, workdir, summary = run
    losses = [r["loss"] for r in read_jsonl(workdir / "metrics.jsonl") if r["split"] == "train"]
    assert summary["step"] == STEPS and len(losses) == STEPS
    assert losses[-1] < losses[0] - 2.0, losses


def test_export_loads_in_transformers_with_the_same_logits(run):
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    _, workdir, _ = run
    export = workdir / "hf"
    assert (export / "tokenizer.json").read_bytes() == (Path(minilm_path()) / "tokenizer.json").read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(str(export))
    batch = tokenizer([TEXT, "shutil copies files."], padding=True, return_tensors="np")
    reference = BertForMaskedLM.from_pretrained(str(export)).eval()
    with torch.no_grad():
        expected = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    module, params = hf.from_pretrained(export, head="mlm")
    logits = module.apply({"params": params}, batch["input_ids"], attention_mask=batch["attention_mask"],
                          token_type_ids=batch["token_type_ids"])
    mask = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(logits)[mask], expected[mask], atol=1e-4, rtol=0)
    # The export is the trained state: the encoder moved away from MiniLM's weights.
    _, start = hf.from_pretrained(minilm_path())
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), params["encoder"], start)
    assert max(jax.tree.leaves(moved)) > 1e-4


def test_rerun_resumes_from_its_own_checkpoint(run, monkeypatch):
    cfg, workdir, summary = run

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run read init_from's weights again")

    monkeypatch.setattr(hf, "from_pretrained", refuse)
    cfg = cfg.copy_and_resolve_references()
    cfg.export_hf = False
    assert loop.train(cfg, str(workdir))["step"] == summary["step"]


def test_a_contradicting_architecture_field_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"config\.model\.hidden_size=256 contradicts init_from=.*hidden_size=384"):
        loop.train(make_config(tmp_path, **{"model.hidden_size": 256}), str(tmp_path / "work"))
    # The run's own fields apply; the architecture is the checkpoint's, also where the config file differs.
    cfg = make_config(tmp_path, **{"model.mlp_dropout": 0.2, "model.attention_impl": "xla"})
    model = loop.checkpoint_model(cfg.model, cfg.model_defaults, minilm_path())
    assert (model.mlp_dropout, model.attention_impl) == (0.2, "xla")
    assert (model.architecture, model.hidden_size, model.vocab_size) == ("bert", 384, 30522) != (
        cfg.model.architecture, cfg.model.hidden_size, cfg.model.vocab_size)


def test_a_masked_lm_checkpoint_brings_its_head(tmp_path):
    """A BertForMaskedLM (small, random, MiniLM's tokenizer files) starts with its own head and decoder bias."""
    import jax.numpy as jnp
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from modernbert_jax import model as model_lib, sharding
    from modernbert_jax.train import state as state_lib

    torch.manual_seed(0)
    reference = BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=64))
    with torch.no_grad():
        reference.cls.predictions.bias.normal_()
    reference.save_pretrained(tmp_path)
    cfg = make_config(tmp_path, init_from=str(tmp_path))
    module = model_lib.MaskedLM(loop.checkpoint_model(cfg.model, cfg.model_defaults, tmp_path))
    _, tx = loop.make_optimizer(cfg)
    mesh, rules = sharding.make_mesh(cfg.mesh), tuple(cfg.sharding_rules)
    with sharding.activate(mesh, rules):
        shardings = state_lib.state_shardings(
            module, tx, sharding.param_shardings(module, mesh, rules, jnp.zeros((1, 8), jnp.int32)), mesh, 8)
        fresh = state_lib.init_state(module, tx, jax.random.key(0), shardings, 8).params
        params = loop._hf_weights(tmp_path, fresh, state_lib.abstract_state(module, tx, shardings, 8).params)
    head = reference.cls.predictions
    np.testing.assert_array_equal(np.asarray(params["decoder_bias"]), head.bias.detach().numpy())
    np.testing.assert_array_equal(np.asarray(params["head"]["dense"]["kernel"]), head.transform.dense.weight.detach().numpy().T)
