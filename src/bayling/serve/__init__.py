"""Serving: the OpenAI-compatible HTTP API, the interactive-translation page, terminal chat, batch translation.

* :mod:`bayling.serve.api`       – ``create_app`` / ``serve`` (FastAPI + uvicorn), ``bayling serve``.
* :mod:`bayling.serve.scheduler` – bounded queue (429), timeouts (503, 504), cancellation on disconnect; blocking
  engines on one worker thread with batching, vLLM's async engine with one request per generation.
* :mod:`bayling.serve.protocol`  – OpenAI request/response/chunk/error shapes.
* :mod:`bayling.serve.translate` – translation requests from the interactive-translation templates, batch
  translation with a resumable journal (``bayling translate``).
* :mod:`bayling.serve.chat`      – the terminal chat of ``bayling chat``.
* ``static/index.html``          – the web page served at ``/`` (self-contained, works offline).
"""
