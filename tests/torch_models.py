"""Helpers the parity tests share for building reference ``transformers`` models (torch side only)."""

import torch


def perturb_norms_and_biases(model: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """Add noise to every norm weight and bias, in place, from torch's global generator.

    ``transformers`` initialises them to ones and zeros, which would hide a norm or bias that our
    side misplaces or drops.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                p.add_(scale * torch.randn_like(p))
    return model
