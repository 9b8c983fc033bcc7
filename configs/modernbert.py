"""The encoder on its own: model block, mesh and sharding rules.

    modernbert_jax.config.load_config("configs/modernbert.py:variant=base")

``arg`` is ``key=value`` pairs separated by commas; ``variant`` is tiny | base | large | bert.
"""

import ml_collections

from modernbert_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = config_lib.parse_arg(arg, variant="tiny")
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.model = config_lib.model_config(args["variant"])
    cfg.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
    cfg.sharding_rules = config_lib.DEFAULT_SHARDING_RULES
    cfg.lock()
    return cfg
