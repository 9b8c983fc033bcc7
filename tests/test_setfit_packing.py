"""SetFit's packing through the data layer's packer: slot bookkeeping, fixed-row blocks, and
embeddings that do not depend on where a sentence lands."""

import random

import jax
import numpy as np
import pytest

from modernbert_jax import config as config_lib, model as model_lib
from modernbert_jax.data import packing
from setfit_jax import encoder as encoder_lib


def test_pack_layout():
    ids = [[2, 5, 6, 3], [2, 7, 3], [2, 3]]
    batch = packing.pack(ids, rows=2, row_len=10, num_slots=4, pad_id=0)
    assert batch.input_ids.tolist() == [[2, 5, 6, 3, 2, 7, 3, 2, 3, 0], [0] * 10]
    assert batch.segment_ids.tolist() == [[1, 1, 1, 1, 2, 2, 2, 3, 3, 0], [0] * 10]
    assert batch.positions.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1, 0], [0] * 10]
    assert batch.token_slot.tolist() == [[0, 0, 0, 0, 1, 1, 1, 2, 2, 4], [4] * 10]
    assert batch.slot_first.tolist() == [0, 4, 7, 0]
    assert batch.slot_valid.tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="need 2 packed rows, the batch has 1"):
        packing.pack(ids, rows=1, row_len=6, num_slots=4, pad_id=0)
    with pytest.raises(ValueError, match="exceed the 2 slots"):
        packing.pack(ids, rows=1, row_len=10, num_slots=2, pad_id=0)


def test_slots_point_at_their_sentences_under_best_fit():
    """Whatever row best fit picks, slot i's tokens are sentence i's tokens, its first at slot_first[i]."""
    rng = random.Random(0)
    for _ in range(100):
        row_len = rng.choice([8, 16, 32])
        ids = [[rng.randint(5, 99) for _ in range(rng.randint(1, row_len))] for _ in range(rng.randint(1, 30))]
        rows = packing.rows_needed([len(x) for x in ids], row_len)
        batch = packing.pack(ids, rows, row_len, num_slots=len(ids) + 2, pad_id=0)
        flat_ids, flat_slot = batch.input_ids.reshape(-1), batch.token_slot.reshape(-1)
        for i, x in enumerate(ids):
            assert flat_ids[flat_slot == i].tolist() == x
            assert flat_ids[batch.slot_first[i]] == x[0] and batch.positions.reshape(-1)[batch.slot_first[i]] == 0
        assert (flat_slot == len(ids) + 2).sum() == rows * row_len - sum(map(len, ids))


def test_max_rows_leaves_out_what_does_not_fit_and_keeps_the_placement():
    rng = random.Random(1)
    for _ in range(200):
        row_len = rng.choice([16, 32, 64])
        lengths = [rng.randint(1, row_len) for _ in range(rng.randint(1, 60))]
        max_rows = rng.randint(1, 6)
        placed = packing.best_fit_decreasing(lengths, row_len, max_rows=max_rows)
        assert 1 <= len(placed) <= max_rows
        assert all(sum(lengths[i] for i in row) <= row_len for row in placed)
        kept = sorted(i for row in placed for i in row)
        # Each left-out item fits no row that was filled.
        for i in set(range(len(lengths))) - set(kept):
            assert all(sum(lengths[j] for j in row) + lengths[i] > row_len for row in placed)
        # The placed items alone pack into the same rows (so a block never needs more rows).
        alone = packing.best_fit_decreasing([lengths[i] for i in kept], row_len)
        assert [[kept[j] for j in row] for row in alone] == placed


def _tiny_encoder(max_seq_length=48):
    cfg = config_lib.model_config("tiny")
    with cfg.unlocked():
        cfg.update(vocab_size=128, hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64,
                   local_attention=8, pad_token_id=0)
    module = model_lib.Encoder(cfg)
    tokenizer = _WhitespaceTokenizer()
    return encoder_lib.SentenceEncoder(module, model_lib.init_params(module, jax.random.PRNGKey(0)), tokenizer,
                                       max_seq_length, pooling="mean")


class _WhitespaceTokenizer:
    """Just enough of ``tokenizers.Tokenizer`` for SentenceEncoder: word ids by a hash, [CLS] ... [SEP]."""

    def no_padding(self):
        pass

    def enable_truncation(self, limit):
        self.limit = limit

    def encode_batch(self, texts):
        class _Encoding:
            def __init__(self, ids):
                self.ids = ids

        return [_Encoding(([2] + [4 + sum(map(ord, w)) % 120 for w in t.split()])[: self.limit - 1] + [3])
                for t in texts]


def test_encode_splits_into_blocks_without_changing_embeddings():
    """Many sentences, a tiny token budget per call (many blocks, short last block) vs all in
    one block, and a few vs one sentence per call: the same embeddings, in input order.
    (Every sentence alone would compile one program per length: too slow for the suite.)"""
    enc = _tiny_encoder()
    rng = random.Random(2)
    texts = [" ".join(f"w{rng.randint(0, 50)}" for _ in range(rng.randint(0, 40))) for _ in range(37)]
    blocks = enc.encode(texts, tokens_per_call=128)
    np.testing.assert_allclose(blocks, enc.encode(texts, tokens_per_call=8192), atol=2e-5)
    alone = np.concatenate([enc.encode([t], tokens_per_call=64) for t in texts[:4]])
    np.testing.assert_allclose(blocks[:4], alone, atol=2e-5)
    assert not np.allclose(blocks[0], blocks[1])  # the embeddings differ by sentence, so order is checked
