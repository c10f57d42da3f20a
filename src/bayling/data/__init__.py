"""Data construction: interactive-translation dialogues and cross-lingual instructions for 100+ languages.

Entry points: :func:`bayling.data.build.build` (the data stage), :func:`bayling.data.build.generate_teacher`
(teacher-LLM generation alone) and :func:`bayling.data.stats.file_stats`; configs in :mod:`bayling.data.config`;
the turn taxonomy and instruction templates in ``templates/interactive.yaml``.
"""
