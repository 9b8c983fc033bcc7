"""Fine-tuning of any encoder `modernbert_jax.hf` loads: sequence and token classification, retrieval.

* `tasks` — the `Task` record, the registry of built-in tasks (`TASKS`) and the user's JSONL files;
* `data` — labelled examples tokenised and packed into fixed-shape batches (labels per slot or token);
* `metrics` — scikit-learn / SciPy / seqeval scores of predictions;
* `classification` — the kind module of sequence (single-, multi-label, regression) and token classification;
* `retrieval` — the kind module of bi-encoder retrieval (in-batch negatives, nDCG@10/MRR@10);
* `loop` — `train(config, workdir)` for every kind: epochs, evaluation, early stopping, resumable checkpoints;
* `datasets` — the offline TFDS corpora of the built-in tasks.
"""
