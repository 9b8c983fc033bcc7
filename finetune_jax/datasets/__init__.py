"""TFDS builders and loaders for the fine-tuning tasks (split by document, held out of pretraining)."""
