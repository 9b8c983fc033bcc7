"""MLM pretraining: train state, jitted steps, checkpoints, metrics and the loop.

Entry point: ``python -m experiments.pretrain``; the loop itself is ``modernbert_jax.train.loop.train``.
"""
