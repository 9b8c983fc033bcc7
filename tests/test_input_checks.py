"""Index inputs are validated eagerly and under ``jax.jit`` (`modernbert_jax.input_checks`).

JAX lookups return NaN rows for out-of-range indices instead of failing, so each case here used
to give silent NaN (or a backend-dependent answer, for segments): positions past an absolute
table, token types past ``type_vocab_size``, masked positions past the row, out-of-vocabulary ids
under ``jit`` / ``grad`` / ``vmap`` / ``nn.remat``, float ids, and segment ids that break the
packing contract on every attention backend. Under ``jit`` the error is a ``JaxRuntimeError``
carrying the ``ValueError``'s message. The 8-device mesh case is in tests/test_sharding.py's
subprocess.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modernbert_jax import config as config_lib
from modernbert_jax import model
from modernbert_jax.attention import dot_product_attention

LIMIT = 16  # positions the small BERT below takes
# A concrete array is checked on the host; a traced one from the device, which jit reports as a
# JaxRuntimeError carrying the ValueError's message.
ERROR = {"eager": ValueError, "jit": jax.errors.JaxRuntimeError}


def small_bert(**fields):
    """A MiniLM-shaped BERT (absolute positions, token types), shrunk for speed."""
    sizes = dict(vocab_size=64, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                 max_position_embeddings=LIMIT, attention_impl="xla")
    return config_lib.replaced(config_lib.bert_config(), **{**sizes, **fields})


@pytest.fixture(scope="module")
def bert():
    module = model.MaskedLM(small_bert())
    return module, model.init_params(module, jax.random.key(0), length=8)


def call(module, params, how: str, *args, **kwargs):
    """``module.apply`` eagerly or under jit (every array traced), waiting for the result so a device error
    surfaces here."""
    fn = lambda p, a, kw: module.apply({"params": p}, *a, **kw)  # noqa: E731
    return jax.block_until_ready((jax.jit(fn) if how == "jit" else fn)(params, args, kwargs))


def packed(lengths: list[int], length: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One packed row: ids, segment ids 1..n and positions restarting per segment, padding after."""
    seg = np.zeros((1, length), np.int32)
    pos = np.zeros((1, length), np.int32)
    start = 0
    for sid, n in enumerate(lengths, start=1):
        seg[0, start:start + n], pos[0, start:start + n] = sid, np.arange(n)
        start += n
    return jnp.ones((1, length), jnp.int32), jnp.asarray(seg), jnp.asarray(pos)


@pytest.mark.parametrize("offset", [0, 2])  # BERT; RoBERTa / XLM-R / MPNet number positions from row 2
def test_positions_past_the_absolute_table_are_named_under_jit(offset):
    cfg = small_bert(max_position_embeddings=LIMIT + offset, position_offset=offset)
    module = model.Encoder(cfg)
    params = model.init_params(module, jax.random.key(0), length=8)
    run = jax.jit(lambda p, a: module.apply({"params": p}, *a))
    # A packed row longer than the table is fine while each sequence fits it.
    assert np.all(np.isfinite(run(params, packed([LIMIT, 8], LIMIT + 8))))
    with pytest.raises(ERROR["jit"], match=rf"positions\[0, {LIMIT}\] = {LIMIT} is outside the absolute position "
                                     rf"table \[0, {LIMIT}\).*position_offset={offset}"):
        jax.block_until_ready(run(params, packed([LIMIT + 1], LIMIT + 8)))


@pytest.mark.parametrize("how", ["eager", "jit"])
def test_padded_input_longer_than_the_table_names_length_and_limit(bert, how):
    module, params = bert
    ids = jnp.ones((2, LIMIT + 1), jnp.int32)
    with pytest.raises(ValueError, match=rf"input length {LIMIT + 1} exceeds the {LIMIT} positions"):
        call(module, params, how, ids, attention_mask=jnp.ones_like(ids))


def test_token_types_past_the_table_are_named_under_jit(bert):
    module, params = bert
    types = jnp.zeros((2, 8), jnp.int32).at[1, 4].set(2)
    with pytest.raises(ERROR["jit"], match=r"token_type_ids\[1, 4\] = 2 is outside the token types \[0, 2\)"):
        call(module, params, "jit", jnp.ones((2, 8), jnp.int32), token_type_ids=types)


@pytest.mark.parametrize("bad", [8, -1])  # -1 would read the last token
def test_masked_positions_past_the_row_are_named_under_jit(bert, bad):
    module, params = bert
    masked = jnp.asarray([[0, 3], [5, bad]], jnp.int32)
    with pytest.raises(ERROR["jit"], match=rf"masked_positions\[1, 1\] = {bad} is outside the sequence \[0, 8\)"):
        call(module, params, "jit", jnp.ones((2, 8), jnp.int32), masked_positions=masked)


def _loss(module, params, ids):
    return module.apply({"params": params}, ids).sum()


# ids are an argument of the jitted function, so they are traced (a closed-over constant is concrete
# and checked on the host while tracing).
TRANSFORMS = {
    "jit": lambda module, params, ids: jax.jit(lambda p, i: _loss(module, p, i))(params, ids),
    "grad": lambda module, params, ids: jax.jit(jax.grad(lambda p, i: _loss(module, p, i)))(params, ids),
    "vmap": lambda module, params, ids: jax.jit(jax.vmap(lambda i: _loss(module, params, i[None])))(ids),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS) + ["remat"])
def test_out_of_vocabulary_ids_are_named_under_transforms(bert, transform):
    module, params = bert
    if transform == "remat":
        module = model.MaskedLM(small_bert(remat=True))
    ids = jnp.ones((2, 8), jnp.int32).at[1, 5].set(64)
    run = TRANSFORMS.get(transform, TRANSFORMS["grad"])
    # Under vmap each row is checked on its own, so the coordinate is within the row.
    where = r"\[0, 5\]" if transform == "vmap" else r"\[1, 5\]"
    with pytest.raises(jax.errors.JaxRuntimeError, match=rf"input_ids{where} = 64 is outside the vocabulary \[0, 64\)"):
        jax.block_until_ready(run(module, params, ids))


def test_negative_id_is_named_under_jit(bert):
    module, params = bert
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"input_ids\[0, 2\] = -3 is outside the vocabulary"):
        call(module, params, "jit", jnp.ones((1, 8), jnp.int32).at[0, 2].set(-3))


@pytest.mark.parametrize("name", ["input_ids", "segment_ids", "positions", "token_type_ids", "masked_positions"])
def test_float_index_inputs_are_named_with_their_dtype(bert, name):
    module, params = bert
    ids, seg, pos = packed([5, 3], 8)
    inputs = {"input_ids": ids, "segment_ids": seg, "positions": pos, "token_type_ids": jnp.zeros_like(ids),
              "masked_positions": jnp.asarray([[1, 2]])}
    inputs[name] = inputs[name].astype(jnp.float32)
    args = [inputs.pop(k) for k in ("input_ids", "segment_ids", "positions")]
    with pytest.raises(ValueError, match=rf"{name} must be an integer array \(e.g. int32\); got dtype float32"):
        call(module, params, "jit", *args, **inputs)


# Each breaks the contract: an id that reappears after another id, or after padding.
BAD_SEGMENTS = {"1,2,1": [1, 1, 2, 2, 1, 1, 0, 0], "1,0,1": [1, 1, 1, 0, 0, 1, 1, 1]}


@pytest.mark.parametrize("how", ["eager", "jit"])
@pytest.mark.parametrize("case", sorted(BAD_SEGMENTS))
@pytest.mark.parametrize("impl", ["xla", "blocked", "pallas_interpret"])
def test_segment_contract_is_checked_on_every_backend(impl, case, how):
    q, k, v = jax.random.normal(jax.random.key(0), (3, 1, 8, 1, 4))
    seg = jnp.asarray([BAD_SEGMENTS[case]], jnp.int32)
    attend = lambda q, k, v, s: dot_product_attention(q, k, v, segment_ids=s, half_window=2, impl=impl)  # noqa: E731
    fn = jax.jit(attend) if how == "jit" else attend
    with pytest.raises(ERROR[how], match=r"segment_ids\[0, [45]\] = 1 starts a run of tokens but is not above"):
        jax.block_until_ready(fn(q, k, v, seg))


def test_attention_mask_with_a_hole_is_named(bert):
    module, params = bert
    mask = jnp.asarray([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 0, 0, 0]])
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"attention_mask \(as segment ids\)\[1, 3\] = 1 starts a run"):
        call(module, params, "jit", jnp.ones((2, 8), jnp.int32), attention_mask=mask)


def test_checks_are_on_by_default_and_check_inputs_off_skips_them(bert):
    assert config_lib.model_config("tiny").check_inputs and small_bert().check_inputs
    _, params = bert
    module = model.MaskedLM(small_bert(check_inputs=False))
    ids = jnp.ones((2, 8), jnp.int32).at[1, 5].set(64)
    logits = call(module, params, "jit", ids)  # unchecked: JAX's lookup fills, as it does for any caller
    assert logits.shape == (2, 8, 64)
