"""bayling: language alignment for LLMs — build data, train, evaluate and serve.

The four stages (``bayling.data``, ``bayling.train``, ``bayling.evaluate``, ``bayling.serve``) share
one chat-format module (:mod:`bayling.chat`) and one language table (:mod:`bayling.languages`).
Heavy dependencies (torch, transformers, TRL, FastAPI, llama.cpp) are imported only where used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
