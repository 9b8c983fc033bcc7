"""The 16-bit dropout mask: right keep rate, independent draws, inverted scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modernbert_jax import dropout


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_rate_and_independence(rate):
    key = jax.random.key(0, impl="rbg")
    mask = np.asarray(dropout.keep_mask(key, rate, (999, 1001)))  # odd size: half a word left over
    assert abs(mask.mean() - (1 - rate)) < 3e-3
    other = np.asarray(dropout.keep_mask(jax.random.fold_in(key, 1), rate, (999, 1001)))
    both = (mask & other).mean()
    assert abs(both - (1 - rate) ** 2) < 3e-3  # two keys: independent masks
    rows = mask.reshape(999, 1001).mean(axis=1)
    assert rows.std() < 4 * np.sqrt(rate * (1 - rate) / 1001)  # no structure along the bit packing


def test_apply_scales_kept_and_module_is_identity_when_deterministic():
    x = jnp.ones((4, 256))
    out = np.asarray(dropout.apply(x, 0.25, jax.random.key(1)))
    np.testing.assert_allclose(np.unique(out), [0.0, 1.0 / 0.75], rtol=1e-6)
    module = dropout.Dropout(0.25)
    assert module.apply({}, x, deterministic=True) is x
    with pytest.raises(ValueError, match="dropout rate"):
        dropout.keep_mask(jax.random.key(0), 1.0, (3,))
