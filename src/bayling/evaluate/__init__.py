"""Evaluation: translation (sacreBLEU with signatures, off-target rate, optional COMET), knowledge benchmarks
(multiple choice by log-likelihood, MGSM), open-ended multi-turn sets with an LLM judge, interactive
translation, and one self-contained HTML report per run.

Entry points: :func:`bayling.evaluate.run.evaluate` (the pipeline's eval stage) and
:func:`bayling.evaluate.runner.run_eval_config` (``bayling eval run``).
"""
