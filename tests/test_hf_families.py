"""Parity with `transformers` for the papers' other backbones: RoBERTa, XLM-RoBERTa, MPNet and
DeBERTa-v2/v3, each a configuration of our modules.

No real weights are downloadable here, so each family is a random-initialised `transformers`
model with deliberately odd sizes (5 heads of 12, 3 layers, 301 tokens), norms and biases
perturbed so a misplaced one shows. Tolerance: max |ours - torch| <= 1e-4 on every non-padding
position (float32, CPU; padding positions carry no meaning), 1e-5 after a save → `transformers`
load round trip and between a packed row and the same sequences run one at a time.
Sequences reach 50+ tokens, past MPNet's exact buckets (8) and DeBERTa's (8 of 16 log buckets),
and past the v2 variant's max_relative_positions (24), so bucketing and clamping are exercised.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from modernbert_jax import config as config_lib
from modernbert_jax import hf
from torch_models import perturb_norms_and_biases

TOL = 1e-4
VOCAB = 301
SIZES = dict(vocab_size=VOCAB, hidden_size=60, num_hidden_layers=3, num_attention_heads=5, intermediate_size=90)

# name -> (transformers MLM class, base-model attribute, config, pad id)
FAMILIES = {
    "roberta": (transformers.RobertaForMaskedLM, "roberta",
                transformers.RobertaConfig(**SIZES, max_position_embeddings=72, pad_token_id=1, type_vocab_size=1), 1),
    "xlm-roberta": (transformers.XLMRobertaForMaskedLM, "roberta",
                    transformers.XLMRobertaConfig(**SIZES, max_position_embeddings=72, pad_token_id=1), 1),
    "mpnet": (transformers.MPNetForMaskedLM, "mpnet",
              transformers.MPNetConfig(**SIZES, max_position_embeddings=72, relative_attention_num_buckets=32), 1),
    # DeBERTa-v3's recipe: no absolute positions, 2 x 16 log buckets, shared keys, normed table.
    "deberta-v3": (transformers.DebertaV2ForMaskedLM, "deberta",
                   transformers.DebertaV2Config(
                       **SIZES, max_position_embeddings=64, relative_attention=True, position_buckets=16,
                       max_relative_positions=64, pos_att_type="p2c|c2p", share_att_key=True,
                       norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0,
                       layer_norm_eps=1e-7, pad_token_id=0), 0),
    # DeBERTa-v2's older options: own position projections, plain clamped distances, absolute
    # positions as well, token types, and the convolution beside layer 0.
    "deberta-v2": (transformers.DebertaV2ForMaskedLM, "deberta",
                   transformers.DebertaV2Config(
                       **SIZES, max_position_embeddings=64, relative_attention=True, position_buckets=-1,
                       max_relative_positions=24, pos_att_type=["c2p", "p2c"], share_att_key=False,
                       position_biased_input=True, type_vocab_size=2, conv_kernel_size=3, conv_act="gelu",
                       layer_norm_eps=1e-7, pad_token_id=0), 0),
    "deberta-c2p": (transformers.DebertaV2ForMaskedLM, "deberta",
                    transformers.DebertaV2Config(
                        **SIZES, max_position_embeddings=64, relative_attention=True, position_buckets=8,
                        max_relative_positions=32, pos_att_type=["c2p"], share_att_key=True,
                        position_biased_input=False, type_vocab_size=0, pad_token_id=0), 0),
}


def _padded_batch(lengths: list[int], pad: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = max(lengths)
    ids = rng.integers(5, VOCAB, size=(len(lengths), T))
    mask = (np.arange(T)[None] < np.array(lengths)[:, None]).astype(np.int64)
    return np.where(mask, ids, pad), mask


def _max_err(ours, ref, mask) -> float:
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(ref, np.float64))
    return float(diff[mask.astype(bool)].max())


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    """(name, reference MLM model, its directory, pad id, base attribute)."""
    cls, base, cfg, pad = FAMILIES[request.param]
    torch.manual_seed(0)
    ref = cls(cfg).eval()
    perturb_norms_and_biases(ref)
    path = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(path)
    return request.param, ref, path, pad, base


def _torch(ref, ids, mask, base: str | None = None):
    model = getattr(ref, base) if base else ref
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    return (out.last_hidden_state if base else out.logits).numpy()


def test_hidden_states_match_transformers(family):
    name, ref, path, pad, base = family
    ids, mask = _padded_batch([52, 23, 9, 40], pad, seed=0)
    module, params = hf.from_pretrained(path)
    assert module.config.architecture == ("deberta-v2" if name.startswith("deberta") else name)
    ours = module.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    assert _max_err(ours, _torch(ref, ids, mask, base), mask) <= TOL


def test_mlm_logits_match_transformers(family):
    _, ref, path, pad, _ = family
    ids, mask = _padded_batch([50, 17, 31], pad, seed=1)
    module, params = hf.from_pretrained(path, head="mlm")
    ours = module.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    assert _max_err(ours, _torch(ref, ids, mask), mask) <= TOL


def test_save_and_transformers_load_back(family, tmp_path):
    _, ref, path, pad, _ = family
    module, params = hf.from_pretrained(path, head="mlm")
    out = hf.save_pretrained(tmp_path / "ours", module, params)
    back = type(ref).from_pretrained(out).eval()
    ids, mask = _padded_batch([44, 12], pad, seed=2)
    assert _max_err(_torch(back, ids, mask), _torch(ref, ids, mask), mask) <= 1e-5


def test_packed_row_equals_sequences_one_at_a_time(family):
    _, _, path, pad, _ = family
    module, params = hf.from_pretrained(path)
    rng = np.random.default_rng(3)
    seqs = [rng.integers(5, VOCAB, n) for n in (30, 11, 17)]
    row_len = 64
    ids = np.full((1, row_len), pad)
    seg = np.zeros((1, row_len), np.int32)
    pos = np.zeros((1, row_len), np.int32)
    start = 0
    for i, s in enumerate(seqs):
        ids[0, start:start + len(s)] = s
        seg[0, start:start + len(s)] = i + 1
        pos[0, start:start + len(s)] = np.arange(len(s))
        start += len(s)
    packed = np.asarray(module.apply({"params": params}, jnp.asarray(ids), jnp.asarray(seg), jnp.asarray(pos)))
    # Each sequence alone in its own row of a padded batch (one call instead of three).
    alone_ids = np.full((len(seqs), max(map(len, seqs))), pad)
    for i, s in enumerate(seqs):
        alone_ids[i, :len(s)] = s
    alone = np.asarray(module.apply({"params": params}, jnp.asarray(alone_ids),
                                    attention_mask=jnp.asarray(alone_ids != pad)))
    start = 0
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(packed[0, start:start + len(s)], alone[i, :len(s)], atol=1e-5)
        start += len(s)


def _config_dir(tmp_path, family_name: str, **changes):
    cfg = FAMILIES[family_name][2].to_dict()
    cfg.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return tmp_path


@pytest.mark.parametrize("family_name, field, value", [
    ("deberta-v3", "embedding_size", 32),
    ("deberta-v2", "conv_groups", 2),
    ("deberta-v3", "pos_att_type", ["c2p", "p2p"]),
    ("deberta-v3", "legacy", False),
    ("roberta", "position_embedding_type", "relative_key"),
])
def test_unimplemented_option_is_named(tmp_path, family_name, field, value):
    path = _config_dir(tmp_path, family_name, **{field: value})
    with pytest.raises(ValueError, match=field):
        hf.from_pretrained(path)


def test_relative_attention_refuses_a_kernel_backend(family):
    _, _, path, _, _ = family
    module, _ = hf.from_pretrained(path)
    if module.config.relative_attention == "none":
        pytest.skip("absolute positions only: every backend applies")
    with pytest.raises(ValueError, match="attention_impl"):
        config_lib.replaced(module.config, attention_impl="pallas")


def test_roberta_length_limit_accounts_for_the_offset(family):
    name, _, path, _, _ = family
    module, _ = hf.from_pretrained(path)
    expected = {"roberta": 70, "xlm-roberta": 70, "mpnet": 70}.get(name, 64)
    assert config_lib.max_length(module.config) == expected


def test_export_refuses_a_parameter_without_a_tensor_name(family, tmp_path):
    _, _, path, _, _ = family
    module, params = hf.from_pretrained(path)
    params = dict(params, stray={"kernel": jnp.zeros((2, 2))})
    with pytest.raises(ValueError, match="stray/kernel"):
        hf.save_pretrained(tmp_path / "out", module, params)
