"""GLiNER in JAX: open-type NER span heads on the encoders of ``modernbert_jax``."""

from gliner_jax.api import GLiNER
from gliner_jax.config import GLiNERConfig

__all__ = ["GLiNER", "GLiNERConfig"]
