"""One call from "nothing on disk" to pretraining-ready data: corpus splits + trained tokenizer.

    from modernbert_jax.data.build import prepare_pretraining_data
    data = prepare_pretraining_data("modernbert_corpus/demo", vocab_size=8192)
    data.train, data.validation      # DocumentSource (random access, str)
    data.tokenizer                   # SentencePieceTokenizer (pad 0, unk 1, [CLS] 2, [SEP] 3, [MASK] 4)
    prepare_pretraining_data(files=[...], tokenizer_path="/models/all-MiniLM-L6-v2")  # its own tokenizer

``dataset`` may be ``modernbert_corpus/<config>`` (the embedded corpus: ``demo``, ``full``, or
``n<N>`` for a custom cap of N candidate documents), any other TFDS name (prepared as
array_record and read through data sources), or ``files=[...]`` of the user's ``.txt``/``.jsonl``
files (split train/validation by ``splits.pretraining``, keyed by each document's content hash:
a user's document has no other stable name, since files move and a JSONL line's number changes
when lines are added, and equal copies of a text then never straddle the splits). Everything is
cached: the TFDS build under ``data_dir`` and the tokenizer next to it, so later calls take seconds.
A ``tokenizer_path`` naming a Hugging Face tokenizer (a checkpoint directory or its
``tokenizer.json``, ``hf_tokenizer.is_hf_tokenizer``) is used as it is: continued pretraining of a
released checkpoint tokenizes with the checkpoint's own vocabulary, and nothing is trained.

Command line (prints the timings)::

    python -m modernbert_jax.data.build --dataset=modernbert_corpus/demo --vocab_size=8192
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Sequence

from modernbert_jax.data import corpus, splits
from modernbert_jax.data.hf_tokenizer import HFTokenizer, is_hf_tokenizer
from modernbert_jax.data.sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece
from modernbert_jax.data.sources import DocumentSource, SubsetSource, TextFileSource, TfdsSource
from modernbert_jax.data.tfds_builder import default_data_dir

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PretrainData:
    train: DocumentSource
    validation: DocumentSource
    tokenizer: SentencePieceTokenizer | HFTokenizer
    tokenizer_path: Path  # the file provenance hashes: the .model, or the Hugging Face tokenizer.json


def tokenizer_training_texts(source: DocumentSource, max_bytes: int) -> list[str]:
    """The first documents of ``source`` up to ``max_bytes`` of UTF-8 (TFDS stores examples in
    key-hash order, so the first documents are a deterministic mix of prose and code)."""
    texts, total = [], 0
    for i in range(len(source)):
        if total >= max_bytes:
            break
        text = source[i]
        texts.append(text)
        total += len(text.encode("utf-8"))
    return texts


def round_trip_failures(source: DocumentSource, tokenizer: SentencePieceTokenizer | HFTokenizer,
                        group: int = 256) -> list[int]:
    """Indices of documents for which ``decode(encode(text)) != text`` (should be none)."""
    failures = []
    for start in range(0, len(source), group):
        texts = [source[i] for i in range(start, min(start + group, len(source)))]
        for offset, (text, ids) in enumerate(zip(texts, tokenizer.encode_batch(texts))):
            if tokenizer.decode(ids) != text:
                failures.append(start + offset)
    return failures


def prepare_pretraining_data(
    dataset: str = "modernbert_corpus/demo",
    *,
    vocab_size: int = 8192,
    data_dir: str | os.PathLike | None = None,
    files: Sequence[str | os.PathLike] | None = None,
    text_key: str = "text",
    train_split: str = "train",
    validation_split: str = "validation",
    validation_fraction: float = 0.01,
    tokenizer_path: str | os.PathLike | None = None,
    tokenizer_train_bytes: int = 32 << 20,
) -> PretrainData:
    """Build (or reuse) the corpus and its tokenizer; see the module docstring.

    ``tokenizer_path``: a Hugging Face tokenizer is loaded (``vocab_size`` is then its own, not
    asked); an existing ``.model`` is loaded; otherwise one is trained on the first
    ``tokenizer_train_bytes`` of the train split and written there (default: under ``data_dir``).
    """
    data_dir = Path(data_dir or default_data_dir())
    if files:
        everything = TextFileSource(files, text_key=text_key)
        split_of = splits.pretraining(validation_fraction)
        assigned = [split_of(corpus.content_hash(everything[i])) for i in range(len(everything))]
        train = SubsetSource(everything, [i for i, s in enumerate(assigned) if s == "train"])
        validation = SubsetSource(everything, [i for i, s in enumerate(assigned) if s == "validation"])
        label = "files-" + corpus.content_hash("\n".join(str(Path(f).resolve()) for f in files))[:12]
    else:
        train = TfdsSource(dataset, train_split, text_key=text_key, data_dir=str(data_dir))
        validation = TfdsSource(dataset, validation_split, text_key=text_key, data_dir=str(data_dir))
        label = dataset.replace("/", "-")
    if len(train) == 0 or len(validation) == 0:
        raise ValueError(f"{dataset if not files else 'files'}: empty split (train={len(train)}, validation={len(validation)})")
    if tokenizer_path and is_hf_tokenizer(tokenizer_path):
        tokenizer = HFTokenizer.load(tokenizer_path)
        return PretrainData(train=train, validation=validation, tokenizer=tokenizer, tokenizer_path=tokenizer.files[0])
    path = Path(tokenizer_path) if tokenizer_path else data_dir / "tokenizers" / f"{label}-bpe{vocab_size}.model"
    if path.is_file():
        tokenizer = SentencePieceTokenizer.load(path)
        if tokenizer.vocab_size != vocab_size:
            raise ValueError(f"tokenizer {path} has vocab_size={tokenizer.vocab_size}, asked for {vocab_size}")
    else:
        start = time.time()
        tokenizer = train_sentencepiece(tokenizer_training_texts(train, tokenizer_train_bytes), vocab_size, output_path=path)
        log.info("trained %d-piece tokenizer in %.1fs -> %s", vocab_size, time.time() - start, path)
    return PretrainData(train=train, validation=validation, tokenizer=tokenizer, tokenizer_path=path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="modernbert_corpus/demo")
    parser.add_argument("--vocab_size", type=int, default=8192)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--files", nargs="*", default=None, help="your own .txt/.jsonl files instead of a TFDS dataset")
    parser.add_argument("--tokenizer_path", default=None,
                        help="a sentencepiece .model (trained there if missing), or a Hugging Face tokenizer")
    parser.add_argument("--verify_round_trip", action="store_true",
                        help="check decode(encode(doc)) == doc for every document of both splits")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.time()
    data = prepare_pretraining_data(args.dataset, vocab_size=args.vocab_size, data_dir=args.data_dir,
                                     files=args.files, tokenizer_path=args.tokenizer_path)
    print(f"train documents: {len(data.train)}  validation documents: {len(data.validation)}")
    print(f"tokenizer: {data.tokenizer_path} ({data.tokenizer.vocab_size} pieces)")
    print(f"ready in {time.time() - start:.1f}s")
    if args.verify_round_trip:
        start = time.time()
        for name, split in (("train", data.train), ("validation", data.validation)):
            failures = round_trip_failures(split, data.tokenizer)
            print(f"round trip {name}: {len(split) - len(failures)}/{len(split)} documents exact"
                  + (f"; first failures at {failures[:10]}" if failures else ""))
        print(f"verified in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
