"""NER data for GLiNER: the Python-docs corpus, the reference JSON format, batching."""
