"""Evaluation: translation (sacreBLEU with signatures, off-target rate, optional COMET), knowledge benchmarks
(multiple choice by log-likelihood, MGSM), open-ended multi-turn sets with an LLM judge, interactive
translation, and one self-contained HTML report per run.

Entry points: :func:`evaluate` (the eval stage, :mod:`bayling.evaluate.stage`) -> :class:`EvalResult`, and
:func:`bayling.evaluate.eval_only.run_eval_config` (``bayling eval run``).
"""

__all__ = ["EvalResult", "evaluate"]


def __getattr__(name: str) -> object:
    """The stage's entry point, imported on first use: importing the package (its config) stays cheap."""
    if name in __all__:
        from bayling.evaluate import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
