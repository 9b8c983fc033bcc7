"""Entry points, each run from the repository root as ``python -m experiments.<name>``.

Scripts never import each other; what two of them share lives in the library or in a
non-script module here (`experiments.timing`).
"""
