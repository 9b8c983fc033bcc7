"""Attention kernels behind `modernbert_jax.attention.dot_product_attention`: the dense reference and its mask, blocked, Pallas."""
