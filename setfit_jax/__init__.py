"""SetFit (Tunstall et al. 2022) few-shot classification on modernbert_jax encoders."""
