"""Pretraining data: Debian-sourced corpus, TFDS builders, sentencepiece tokenizer, packing, MLM masking.

Submodules are imported explicitly (``from modernbert_jax.data import debian``) so that the model
code never pulls in TFDS or apt tooling.
"""
