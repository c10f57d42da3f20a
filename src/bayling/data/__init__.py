"""Data construction: interactive-translation dialogues and cross-lingual instructions for 100+ languages.

Entry point: :func:`build` (the data stage, :mod:`bayling.data.builder`) -> :class:`DataResult`; also
:func:`~bayling.data.builder.generate_teacher` (teacher-LLM generation alone), :func:`~bayling.data.stats.file_stats`
and :func:`~bayling.data.check.check_file` (contamination of a training file). Configs in :mod:`bayling.data.config`;
the turn taxonomy and instruction templates in ``src/bayling/templates/interactive.yaml`` (:mod:`bayling.prompts`).
"""

__all__ = ["DataResult", "build"]


def __getattr__(name: str) -> object:
    """The stage's entry point, imported on first use: importing the package (its config) stays cheap."""
    if name in __all__:
        from bayling.data import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
