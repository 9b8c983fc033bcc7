"""StableAdamW against a NumPy transcription of optimi's update; the one warmup-then-decay schedule
against Hugging Face's schedulers; the batch-size warmup."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from modernbert_jax import optim


def _numpy_stable_adamw(params, grads_per_step, lrs, *, b1, b2, eps, wd, max_lr, decay):
    """optimi.StableAdamW(decouple_lr=True) step by step, in float64, one tensor at a time."""
    params = {k: v.astype(np.float64).copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    history = []
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        b1_hat = b1 * (1 - b1 ** (t - 1)) / (1 - b1**t)
        b2_hat = b2 * (1 - b2 ** (t - 1)) / (1 - b2**t)
        for k in params:
            g = grads[k].astype(np.float64)
            m[k] = b1_hat * m[k] + (1 - b1_hat) * g
            v2[k] = b2_hat * v2[k] + (1 - b2_hat) * g * g
            rms = np.sqrt(np.mean(g * g / np.maximum(v2[k], eps * eps)))
            lr_t = lr / max(1.0, rms)
            if decay[k]:
                params[k] = params[k] * (1 - lr_t / max_lr * wd)
            params[k] = params[k] - lr_t * m[k] / (np.sqrt(v2[k]) + eps)
        history.append({k: p.copy() for k, p in params.items()})
    return history


def test_stable_adamw_matches_numpy_reference_step_by_step():
    rng = np.random.default_rng(0)
    params = {
        "dense": {"kernel": rng.normal(size=(6, 5)).astype(np.float32)},
        "attn_norm": {"scale": rng.normal(size=(5,)).astype(np.float32)},
        "decoder_bias": rng.normal(size=(7,)).astype(np.float32),
    }
    flat_keys = ["dense/kernel", "attn_norm/scale", "decoder_bias"]

    def flat(tree):
        return {"dense/kernel": tree["dense"]["kernel"], "attn_norm/scale": tree["attn_norm"]["scale"],
                "decoder_bias": tree["decoder_bias"]}

    steps = 6
    # Step 3 has a gradient spike so the update clipping (rms > 1) is exercised.
    grads = []
    for t in range(steps):
        g = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32), params)
        if t == 3:
            g = jax.tree.map(lambda x: x * 50.0, g)
        grads.append(g)
    peak, wd = 1e-2, 0.1  # a large wd so a wrong decay mask shows up
    schedule = optim.warmup_stable_decay(peak, total_steps=steps, warmup_steps=2, decay_steps=2)
    mask = optim.decay_mask(params)
    assert flat(mask) == {"dense/kernel": True, "attn_norm/scale": False, "decoder_bias": False}

    tx = optim.stable_adamw(schedule, b1=0.9, b2=0.98, eps=1e-6, weight_decay=wd, max_lr=peak, mask=optim.decay_mask)
    state = tx.init(params)
    p = params
    got = []
    for g in grads:
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        got.append(flat(p))

    lrs = [float(schedule(t)) for t in range(steps)]
    want = _numpy_stable_adamw(flat(params), [flat(g) for g in grads], lrs, b1=0.9, b2=0.98, eps=1e-6,
                               wd=wd, max_lr=peak, decay=flat(mask))
    for t in range(steps):
        for k in flat_keys:
            np.testing.assert_allclose(got[t][k], want[t][k], rtol=1e-5, atol=1e-6, err_msg=f"step {t + 1} {k}")


def test_update_clipping_bounds_the_step():
    # A first step has v = g^2, so rms = 1 and the step is lr * sign(g) (up to eps); a sudden spike
    # on step 2 has rms > 1 and the step shrinks below lr.
    params = {"w": jnp.zeros((4, 4))}
    tx = optim.stable_adamw(1.0, weight_decay=0.0)
    state = tx.init(params)
    u1, state = tx.update({"w": jnp.full((4, 4), 1e-3)}, state, params)
    np.testing.assert_allclose(u1["w"], -1.0, rtol=1e-2)
    u2, _ = tx.update({"w": jnp.full((4, 4), 1e3)}, state, params)
    assert float(jnp.max(jnp.abs(u2["w"]))) < 1.0


def test_warmup_stable_decay_shape():
    s = optim.warmup_stable_decay(1.0, total_steps=100, warmup_steps=10, decay_steps=20, final_lr_fraction=0.1)
    assert float(s(0)) == pytest.approx(0.1)
    assert float(s(9)) == pytest.approx(1.0)
    assert float(s(50)) == pytest.approx(1.0)
    # 1-sqrt: a quarter through the decay window keeps 0.1 + 0.9 * (1 - 0.5).
    assert float(s(85)) == pytest.approx(0.1 + 0.9 * 0.5)
    assert float(s(100)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.warmup_stable_decay(1.0, total_steps=10, warmup_steps=8, decay_steps=8)


@pytest.mark.parametrize("total,ratio", [(50, 0.1), (37, 0.25), (10, 0.0), (8, 1.0)])
@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_hf_shapes_match_transformers_step_by_step(shape, total, ratio):
    # The function GLiNER and SetFit train with, against the real transformers schedulers driving
    # a torch optimiser (LambdaLR evaluates its lambda in float64; ours runs in float32).
    import torch
    import transformers

    peak = 3e-4
    warmup = optim.warmup_steps_for(total, ratio)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    make = {"linear": transformers.get_linear_schedule_with_warmup,
            "cosine": transformers.get_cosine_schedule_with_warmup}[shape]
    ref = make(opt, num_warmup_steps=warmup, num_training_steps=total)
    want = []
    for _ in range(total):  # every step a run of `total` steps takes
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    ours = optim.hf_warmup_decay(peak, total, ratio, shape)
    got = [float(ours(t)) for t in range(total)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=peak * 1e-7)


def test_warmup_steps_round_up_as_transformers_trainer():
    import transformers

    for total, ratio in [(50, 0.1), (37, 0.25), (7, 0.01), (10, 0.0)]:
        hf_args = transformers.TrainingArguments(output_dir="/nonexistent", warmup_steps=ratio, report_to=[])
        assert optim.warmup_steps_for(total, ratio) == hf_args.get_warmup_steps(total)
    with pytest.raises(ValueError, match="warmup ratio"):
        optim.warmup_steps_for(10, 1.5)


def test_unknown_decay_shape_is_refused():
    with pytest.raises(ValueError, match="shape='exp'"):
        optim.warmup_stable_decay(1.0, 10, 2, 8, shape="exp")


def test_batch_size_warmup_is_linear_in_tokens_and_whole_micro_batches():
    rows = optim.batch_size_warmup(start_rows=768, end_rows=4608, warmup_tokens=50_000, micro_batch_rows=96)
    assert rows(0) == 768
    assert rows(25_000) == 2688  # halfway: 768 + 1920
    assert rows(10_000) % 96 == 0
    assert rows(50_000) == rows(10**9) == 4608
    with pytest.raises(ValueError, match="end_rows"):
        optim.batch_size_warmup(8, 12, 100, micro_batch_rows=8)
