"""Everything that needs torch or exists only to train: data assembly (:mod:`.data`), the
models, the training loops, distributed helpers, evaluation and ONNX export.

Nothing outside this package imports it, except the CLI's training commands inside the
command, so detecting faces never loads torch (``tests/test_layout.py`` checks the rule).
"""
