"""bayling: language alignment for LLMs — build data, train, evaluate and serve.

The four stages (``bayling.data``, ``bayling.train``, ``bayling.evaluate``, ``bayling.serve``) stand side by
side on a shared floor (the modules directly in this package and :mod:`bayling.engines`: chat formats, the
language table, config loading, I/O, digests and journals, the run layout, records and test sets, prompt
wording, models and engines) and never import each other; :mod:`bayling.pipeline` and :mod:`bayling.cli`
compose them (``tests/test_architecture.py`` checks the graph). Heavy dependencies (torch, transformers,
TRL, FastAPI, llama.cpp) are imported only where used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
