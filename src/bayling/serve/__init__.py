"""Serving: the OpenAI-compatible HTTP API, the interactive-translation page, terminal chat, batch translation.

* :mod:`bayling.serve.api`       – ``create_app`` / ``serve`` (FastAPI + uvicorn), ``bayling serve``.
* :mod:`bayling.serve.scheduler` – one engine worker thread: bounded queue (429), timeouts (503), batching,
  streaming with cancellation on disconnect.
* :mod:`bayling.serve.protocol`  – OpenAI request/response/chunk/error shapes.
* :mod:`bayling.serve.translate` – translation requests from the interactive-translation templates, batch
  translation with a resumable journal (``bayling translate``).
* :mod:`bayling.serve.chat`      – ``load_engine_for`` (run dir or model -> engine) and ``bayling chat``.
* ``static/index.html``          – the web page served at ``/`` (self-contained, works offline).
"""
