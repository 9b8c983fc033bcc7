"""MLM masking statistics: rate, 80/10/10 split, never special tokens or padding, static shapes."""

import math

import numpy as np
import pytest

from modernbert_jax.data import masking, packing

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = (PAD, UNK, CLS, SEP, MASK)
VOCAB = 1024


def _packed_batch(rows=64, seq_len=512, seed=0):
    rng = np.random.default_rng(seed)
    packed = []
    for _ in range(rows):
        row, free = [], seq_len - int(rng.integers(0, 40))  # some padding at the end of each row
        while free >= 3:
            n = int(rng.integers(1, min(free - 2, 200) + 1))
            body = [int(x) for x in rng.integers(5, VOCAB, size=n)]
            body[n // 2] = UNK  # an [UNK] inside the text must not be chosen either
            row.append([CLS, *body, SEP])
            free -= n + 2
        packed.append(row)
    return packing.rows_to_arrays(packed, seq_len, PAD)


@pytest.mark.parametrize("rate", [0.30, 0.15])
def test_masking_rate_and_80_10_10(rate):
    batch = _packed_batch()
    rngs = [np.random.default_rng([7, r]) for r in range(64)]
    out = masking.mask_batch(batch, rngs, rate=rate, mask_id=MASK, pad_id=PAD, special_ids=SPECIAL, vocab_size=VOCAB)
    m = math.ceil(rate * 512)
    for key in ("masked_positions", "masked_labels", "masked_weights"):
        assert out[key].shape == (64, m)
    assert out["masked_positions"].dtype == np.int32 and out["masked_weights"].dtype == np.float32

    original, corrupted = batch["input_ids"], out["input_ids"]
    maskable = (batch["segment_ids"] > 0) & ~np.isin(original, SPECIAL)
    chosen = np.zeros_like(maskable)
    for b in range(64):
        w = out["masked_weights"][b] > 0
        pos = out["masked_positions"][b][w]
        assert len(set(pos.tolist())) == len(pos), "a position was chosen twice"
        np.testing.assert_array_equal(out["masked_labels"][b][w], original[b, pos])
        assert (out["masked_labels"][b][~w] == PAD).all() and (out["masked_positions"][b][~w] == 0).all()
        chosen[b, pos] = True
    assert not (chosen & ~maskable).any(), "special token or padding was chosen"
    np.testing.assert_array_equal(corrupted[~chosen], original[~chosen])
    assert abs(chosen.sum() / maskable.sum() - rate) < 0.01

    picked_orig, picked_new = original[chosen], corrupted[chosen]
    as_mask = np.mean(picked_new == MASK)
    kept = np.mean(picked_new == picked_orig)
    replaced = np.mean((picked_new != MASK) & (picked_new != picked_orig))
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.02 and abs(replaced - 0.1) < 0.02
    assert not np.isin(picked_new[picked_new != MASK], SPECIAL).any(), "random replacement drew a special token"


def test_masking_is_a_function_of_the_generators():
    batch = _packed_batch(rows=4, seq_len=128)
    run = lambda: masking.mask_batch(batch, [np.random.default_rng([3, r]) for r in range(4)], rate=0.3,
                                     mask_id=MASK, pad_id=PAD, special_ids=SPECIAL, vocab_size=VOCAB)
    a, b = run(), run()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(ValueError, match="mask rate"):
        masking.num_mask_slots(128, 1.5)
