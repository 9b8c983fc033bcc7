"""setfit_jax.packing: first-fit-decreasing blocks, and the inference chunker built on the same rule."""

import random

import numpy as np

from setfit_jax import packing


def test_pack_layout():
    ids = [[2, 5, 6, 3], [2, 7, 3], [2, 3]]
    batch = packing.pack(ids, rows=1, row_len=10, num_slots=4, pad_id=0)
    assert batch.input_ids.tolist() == [[2, 5, 6, 3, 2, 7, 3, 2, 3, 0]]
    assert batch.segment_ids.tolist() == [[1, 1, 1, 1, 2, 2, 2, 3, 3, 0]]
    assert batch.positions.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1, 0]]
    assert batch.token_slot.tolist() == [[0, 0, 0, 0, 1, 1, 1, 2, 2, 4]]
    assert batch.slot_first.tolist() == [0, 4, 7, 0]
    assert batch.slot_valid.tolist() == [True, True, True, False]


def test_chunk_for_inference_rows_match_first_fit():
    """Each chunk's row count is what ``pack`` (first fit) needs for it, within the caps."""
    rng = random.Random(0)
    for _ in range(300):
        row_len = rng.choice([16, 32, 64])
        lengths = [rng.randint(1, row_len) for _ in range(rng.randint(1, 60))]
        rows, slots = rng.randint(1, 6), rng.randint(1, 20)
        seen = []
        for chunk, used in packing.chunk_for_inference(lengths, rows, row_len, slots):
            assert 0 < len(chunk) <= slots
            assert used == packing.rows_needed([lengths[i] for i in chunk], row_len) <= rows
            seen += chunk
        assert sorted(seen) == list(range(len(lengths)))


def test_slot_cap_does_not_count_an_unused_row():
    # One slot per chunk: a full row followed by a sentence that would open a second row.
    assert packing.chunk_for_inference([16, 8], rows=2, row_len=16, num_slots=1) == [([0], 1), ([1], 1)]
    assert np.all(np.diff([len(c) for c, _ in packing.chunk_for_inference([4] * 9, 2, 16, 4)][:-1]) == 0)
