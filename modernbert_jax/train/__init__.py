"""MLM pretraining: train state, jitted steps, checkpoints, metrics and the loop.

Entry point: ``experiments/pretrain.py``; the loop itself is ``modernbert_jax.train.loop.train``.
"""
