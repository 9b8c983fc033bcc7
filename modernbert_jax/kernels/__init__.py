"""Attention kernels behind `modernbert_jax.attention.dot_product_attention`."""
