"""ModernBERT in JAX/Flax: encoder, attention kernels, pretraining and Hugging Face interop."""
