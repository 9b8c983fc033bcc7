"""Pretraining data: Debian-sourced corpus, TFDS builder, sentencepiece tokenizer, packing, MLM masking.

    debian                  apt-get download / dpkg-deb of pinned packages, Debian package records
    splits                  the one document-split rule, and the downstream corpora's splits
    rst                     the Python docs' Sphinx sources parsed once: plain text, and prose with
                            typed spans (the NER corpus)
    corpus                  default documents (Python docs as text, package descriptions, .py files
                            of pinned packages), less everything a downstream corpus holds out
    tfds_builder            the "modernbert_corpus" TFDS builder (array_record, no TensorFlow)
    sources                 random-access document sources (in memory, TFDS, user files)
    sentencepiece_tokenizer BPE with BERT special tokens that round-trips code exactly
    packing, masking        best-fit sequence packing and 80/10/10 MLM masking
    pipeline                PretrainPipeline: deterministic, resumable, host-sliced global batches
    build                   prepare_pretraining_data(): corpus + tokenizer in one call (and CLI)

Submodules are imported explicitly (``from modernbert_jax.data import debian``) so that the model
code never pulls in TFDS or apt tooling.
"""
