"""TFDS builders for SetFit's few-shot corpora (import ``setfit_jax.datasets.debian_sections`` to register)."""
