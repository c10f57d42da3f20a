"""``bayling serve``: an OpenAI-compatible HTTP API plus the interactive-translation web page.

Routes:
    * ``POST /v1/chat/completions`` – OpenAI chat completions, plain JSON or SSE (``stream: true``).
    * ``POST /v1/translate``         – ``{text, source_lang, target_lang, glossary?, style?}`` -> translation.
    * ``POST /v1/translate/prompt``  – the conversation ``/v1/translate`` would send (the web page refines it).
    * ``GET  /v1/translate/options`` – languages, styles and refine follow-ups for pickers.
    * ``GET  /v1/models``, ``GET /v1/models/{id}``, ``GET /health``, ``GET /`` (the web page).

Engines run behind :class:`~bayling.serve.scheduler.Scheduler` (bounded queue -> 429, queue timeout -> 503;
blocking engines on one worker thread with batching of waiting requests, vLLM's async engine with one
request per generation); the event loop only parses, validates and relays. A client that disconnects
mid-stream has its generation stopped at the next piece; one whose plain request still waits has it taken
out of the queue (it never reaches the engine). A plain request already running in a blocking engine's
batch runs to its end and its row is dropped; vLLM aborts it. Every request is answered: a generation
over ``generation_timeout_s`` is a 504, and an internal failure a 500 that names only a request id (the
exception, with that id, goes to the server log).

What the server enforces on every request, before any route runs (:class:`RequestGuard`):

* ``Host`` must be one of ``ServeConfig.host_allow_list()`` (bound to localhost: ``localhost``,
  ``127.0.0.1``, ``::1``), else 400: a web page that rebinds its DNS name to 127.0.0.1 cannot reach it.
* A request with an ``Origin`` header must come from the server's own origin (the page at ``/``) or one of
  ``ServeConfig.cors_origins``, else 403; a CORS preflight from another origin gets a 403 without any
  ``Access-Control-Allow-*`` header. Allowed origins get CORS headers (Starlette's ``CORSMiddleware``).
* ``POST`` bodies must be ``Content-Type: application/json``, else 415 (a cross-site HTML form or a
  "simple" ``fetch`` cannot send that without a preflight).

When the environment variable named by ``ServeConfig.api_key_env`` (``BAYLING_API_KEY``) is set, ``/v1/*``,
``/docs`` and ``/openapi.json`` need ``Authorization: Bearer <key>``. Request bounds (message count, prompt
tokens, ``max_tokens``, stop strings, ``n``, unknown fields) are in :mod:`bayling.serve.protocol` and
``_Served.prepare``.

Run as::

    bayling serve gemma-3-270m --engine llamacpp --port 8000
    python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='x'); ..."
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime, and they
# name classes of the lazily imported fastapi module.
import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from bayling.engines import Engine, GenerationParams
from bayling.errors import BaylingError, MissingDependencyError, ModelError, UnknownLanguageError, require
from bayling.serve import protocol as P
from bayling.serve.config import LOOPBACK, ServeConfig
from bayling.serve.scheduler import Busy, GenerationTimeout, Overloaded, Scheduler

log = logging.getLogger(__name__)


def _count_prompt(engine: Engine, conversation: list[dict[str, str]]) -> int:
    if hasattr(engine, "count_prompt_tokens"):
        return int(engine.count_prompt_tokens(conversation))
    from bayling.chat import render

    return len(render(conversation, "gemma", add_generation_prompt=True)) // 4  # a rough bound for foreign engines


def _count_text(engine: Engine, text: str) -> int:
    return int(engine.count_tokens(text)) if hasattr(engine, "count_tokens") else len(text) // 4


def _error_for(exc: Exception) -> P.APIError:
    """The answer to a failed generation: the client's fault is a 400 saying what; the server's is a 5xx."""
    if isinstance(exc, Overloaded):
        return P.APIError(
            429, str(exc), type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"}
        )
    if isinstance(exc, Busy):
        return P.APIError(503, str(exc), type="server_error", code="server_busy", headers={"Retry-After": "5"})
    if isinstance(exc, GenerationTimeout):
        return P.APIError(504, str(exc), type="server_error", code="generation_timeout", headers={"Retry-After": "5"})
    if isinstance(exc, BaylingError) and not isinstance(exc, MissingDependencyError | ModelError):
        return P.APIError(400, str(exc))  # a missing extra or an unloadable model is the server's fault
    return _internal_error(exc, "generation")


def _internal_error(exc: BaseException, where: str) -> P.APIError:
    """A 500 that tells the client only a request id; the exception, under that id, goes to the server log.

    Exception text can carry paths, model names or other clients' input: it stays on the server.
    """
    rid = P.new_id("req")
    log.error("%s failed; request id %s", where, rid, exc_info=exc)
    return P.APIError(
        500,
        f"internal server error; request id {rid} (the server log has the details)",
        type="server_error",
        code="internal_error",
        headers={"X-Request-Id": rid},
    )


def _host_name(host: str) -> str:
    """``Host`` header -> lower-case name without port (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    """ASGI middleware: the ``Host`` allow-list, same-origin-or-allowed ``Origin``, JSON ``Content-Type`` on POST.

    Args:
        app: the wrapped ASGI app.
        hosts: accepted host names (see :meth:`ServeConfig.host_allow_list`); None: any.
        origins: origins allowed besides the server's own; ``"*"`` allows every origin.
    """

    def __init__(self, app: Any, hosts: frozenset[str] | None, origins: frozenset[str]) -> None:
        self.app, self.hosts, self.origins = app, hosts, origins

    def problem(self, scope: dict[str, Any]) -> tuple[int, str, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.hosts is not None and _host_name(host) not in self.hosts:
            return (
                400,
                f"unknown Host {host!r}; this server answers to: {', '.join(sorted(self.hosts))}",
                "invalid_host",
            )
        origin = headers.get("origin")
        if origin is not None and "*" not in self.origins and origin not in self.origins:
            if origin.lower() != f"{scope.get('scheme', 'http')}://{host}".lower():
                return 403, f"cross-origin request from {origin!r} refused (serve.cors_origins)", "cross_origin"
        if scope.get("method") == "POST":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return 415, f"Content-Type must be application/json, got {ctype or 'none'!r}", "unsupported_media_type"
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        found = self.problem(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        status, message, code = found
        body = json.dumps(P.APIError(status, message, code=code).body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _disconnected(request: Any) -> None:
    """Return when the client of ``request`` (whose body was read already) disconnects."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(request: Any, work: Any) -> Any:
    """Await ``work``; if the client disconnects first, cancel it and raise :class:`ClientGone`."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this handler itself was cancelled (server shutting down)
        task.cancel()
        raise
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        await asyncio.wait({task})  # let it unwind (a queued job leaves the queue, a running one is aborted)
        raise ClientGone()
    return task.result()


class ClientGone(Exception):
    """The client disconnected before its answer was ready (nothing is sent; HTTP 499 in logs)."""


class _Served:
    """What every route shares: the engine behind its scheduler, the limits, the name and key it serves under.

    One per app. The routes come in groups by what they serve (:func:`_openai_routes`,
    :func:`_translation_routes`, :func:`_docs_routes`, :func:`_health_routes`, :func:`_page_routes`), each a
    small router over this object, and :func:`create_app` only assembles them.
    """

    def __init__(self, engine: Engine, cfg: ServeConfig, api_key: str | None) -> None:
        self.engine, self.cfg = engine, cfg
        self.key = api_key if api_key is not None else os.environ.get(cfg.api_key_env, "")
        self.model_name = cfg.model_name or getattr(engine, "model_name", "bayling")
        self.context = int(getattr(engine, "context_length", cfg.max_input_tokens + cfg.max_new_tokens))
        self.scheduler = Scheduler(
            engine, cfg.max_queue, cfg.max_batch_size, cfg.queue_timeout_s, cfg.generation_timeout_s
        )
        self.started_at = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """The scheduler runs while the app does."""
        if hasattr(self.engine, "count_tokens"):  # build the counting tokenizer now, not on the first request
            await asyncio.to_thread(self.engine.count_tokens, "warm-up")
        self.scheduler.start()
        try:
            yield
        finally:
            self.scheduler.close()

    def auth(self) -> Any:
        """The dependency that checks ``Authorization: Bearer <key>`` (nothing when no key is set)."""
        import fastapi

        def check_auth(request: fastapi.Request) -> None:
            if not self.key:
                return
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key.encode()):
                raise P.APIError(
                    401, "missing or invalid API key; send 'Authorization: Bearer <key>'", code="invalid_api_key"
                )

        return fastapi.Depends(check_auth)

    async def read_body(self, request: Any) -> bytes:
        limit = self.cfg.max_request_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise P.APIError(413, f"request body over {limit} bytes", code="request_too_large")
        buf = bytearray()
        async for part in request.stream():
            buf += part
            if len(buf) > limit:
                raise P.APIError(413, f"request body over {limit} bytes", code="request_too_large")
        return bytes(buf)

    def check_model(self, name: str | None) -> None:
        if name and name != self.model_name:
            raise P.APIError(
                404,
                f"model {name!r} is not served here; available: {self.model_name}",
                param="model",
                code="model_not_found",
            )

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.started_at, "owned_by": "bayling"}

    async def prepare(
        self,
        conv: list[dict[str, str]],
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
        seed: int | None,
    ) -> tuple[GenerationParams, int]:
        """Per-request limits; returns the generation parameters and the prompt's token count."""
        cfg = self.cfg
        if len(conv) > cfg.max_messages:
            raise P.APIError(400, f"too many messages: {len(conv)} > {cfg.max_messages}", param="messages")
        n_new = cfg.default_max_tokens if max_tokens is None else max_tokens
        if n_new > cfg.max_new_tokens:
            raise P.APIError(
                400,
                f"max_tokens {n_new} is over this server's limit of {cfg.max_new_tokens}",
                param="max_tokens",
                code="max_tokens_too_large",
            )
        try:  # in a thread: tokenizing a long prompt must not stall every other client
            n_prompt = await asyncio.to_thread(_count_prompt, self.engine, conv)
        except BaylingError as e:
            raise P.APIError(400, str(e), param="messages") from None
        limit = min(cfg.max_input_tokens, self.context - n_new)
        if n_prompt > limit:
            raise P.APIError(
                400,
                f"the prompt has {n_prompt} tokens; this server accepts at most {limit} "
                f"(max_input_tokens={cfg.max_input_tokens}, context {self.context} minus max_tokens {n_new})",
                param="messages",
                code="context_length_exceeded",
            )
        params = GenerationParams(
            max_new_tokens=n_new, temperature=temperature or 0.0, top_p=1.0 if top_p is None else top_p, seed=seed
        )
        return params, n_prompt

    async def answer(
        self, request: Any, conv: list[dict[str, str]], params: GenerationParams, stops: list[str]
    ) -> dict[str, Any]:
        """One plain reply, cut at ``stops``; cancelled if the client disconnects first."""
        try:
            r = await _unless_gone(request, self.scheduler.generate(conv, params))
        except ClientGone:
            raise
        except Exception as e:
            raise _error_for(e) from None
        text, hit = P.StopScanner(stops).cut(r["text"])
        return {**r, "text": text, "finish_reason": "stop" if hit else r["finish_reason"]}

    async def stream(
        self,
        request: Any,
        conv: list[dict[str, str]],
        params: GenerationParams,
        n_prompt: int,
        stops: list[str],
        include_usage: bool,
    ) -> Any:
        """The reply as OpenAI chat-completion chunks over SSE; errors after the headers are sent go in-band."""
        from fastapi.responses import StreamingResponse
        from starlette.background import BackgroundTask

        scheduler, engine, model_name = self.scheduler, self.engine, self.model_name
        try:
            job = scheduler.submit("stream", conv, params)
        except Exception as e:
            raise _error_for(e) from None
        try:
            await _unless_gone(request, scheduler.wait_started(job))
        except ClientGone:
            job.cancel()
            raise
        except Exception as e:
            job.cancel()
            raise _error_for(e) from None
        cid, created = P.new_id(), int(time.time())

        def event(delta: dict[str, Any] | None, finish: str | None = None, use: dict[str, int] | None = None) -> str:
            return P.chunk(cid, created, model_name, delta, finish, use, with_usage=include_usage)

        async def cancel() -> None:  # async: BackgroundTask runs plain functions on another thread
            job.cancel()

        async def events() -> AsyncIterator[str]:
            scanner, parts, hit = P.StopScanner(stops), [], False
            try:
                yield event({"role": "assistant", "content": ""})
                async for piece in job.stream():
                    out, hit = scanner.feed(piece)
                    if out:
                        parts.append(out)
                        yield event({"content": out})
                    if hit:
                        break
                if not hit and (tail := scanner.flush()):
                    parts.append(tail)
                    yield event({"content": tail})
                n_out = _count_text(engine, "".join(parts))
                finish = "length" if not hit and n_out >= params.max_new_tokens else "stop"
                yield event({}, finish)
                if include_usage:
                    yield event(None, use=P.usage(n_prompt, n_out))
                yield P.DONE
            except Exception as e:  # headers are sent: report in-band, the way OpenAI's server does
                yield P.sse(_error_for(e).body())
                yield P.DONE
            finally:
                job.cancel()  # client gone or stop string hit: the worker stops at its next piece

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(cancel),  # also when the client left before the first event
        )


def _openai_routes(svc: _Served) -> Any:
    """``/v1/chat/completions`` and ``/v1/models``: what the official ``openai`` client calls."""
    from fastapi import APIRouter, Request

    router = APIRouter(prefix="/v1", dependencies=[svc.auth()])

    @router.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        req = P.parse_body(await svc.read_body(request), P.ChatCompletionRequest)
        svc.check_model(req.model)
        conv = [m.as_dict() for m in req.messages]
        max_tokens = req.max_completion_tokens or req.max_tokens
        params, n_prompt = await svc.prepare(conv, max_tokens, req.temperature, req.top_p, req.seed)
        if req.stream:
            include = bool(req.stream_options and req.stream_options.include_usage)
            return await svc.stream(request, conv, params, n_prompt, req.stop, include)
        r = await svc.answer(request, conv, params, req.stop)
        use = P.usage(r["prompt_tokens"] or n_prompt, r["completion_tokens"] or _count_text(svc.engine, r["text"]))
        return P.completion(P.new_id(), svc.model_name, r["text"], r["finish_reason"], use)

    @router.get("/models")
    async def models() -> Any:
        return {"object": "list", "data": [svc.model_card()]}

    @router.get("/models/{model_id:path}")
    async def model(model_id: str) -> Any:
        svc.check_model(model_id)
        return svc.model_card()

    return router


def _translation_conversation(req: P.TranslationRequest) -> tuple[list[dict[str, str]], str, str]:
    """The one-turn conversation asking for ``req``'s translation, and its source and target codes."""
    from bayling.languages import get_language
    from bayling.serve.translate import translation_request

    codes = []
    for param in ("source_lang", "target_lang", "instruction_lang"):
        try:
            codes.append(get_language(getattr(req, param)).code)
        except UnknownLanguageError as e:
            raise P.APIError(400, f"{param}: {e}", param=param, code="unknown_language") from None
    try:
        content = translation_request(req.text, codes[0], codes[1], req.glossary, req.style, codes[2])
    except BaylingError as e:
        raise P.APIError(400, str(e)) from None
    return [{"role": "user", "content": content}], codes[0], codes[1]


def _translation_routes(svc: _Served) -> Any:
    """``/v1/translate``, its prompt and its options: what the web page (and any translation client) calls."""
    from fastapi import APIRouter, Request

    router = APIRouter(prefix="/v1", dependencies=[svc.auth()])

    @router.post("/translate")
    async def translate(request: Request) -> Any:
        req = P.parse_body(await svc.read_body(request), P.TranslationRequest)
        svc.check_model(req.model)
        conv, src, tgt = _translation_conversation(req)
        params, n_prompt = await svc.prepare(conv, req.max_tokens, req.temperature, None, req.seed)
        if req.stream:
            return await svc.stream(request, conv, params, n_prompt, [], False)
        r = await svc.answer(request, conv, params, [])
        return {
            "id": P.new_id("translation"),
            "object": "translation",
            "created": int(time.time()),
            "model": svc.model_name,
            "source_lang": src,
            "target_lang": tgt,
            "translation": r["text"],
            "finish_reason": r["finish_reason"],
            "messages": conv + [{"role": "assistant", "content": r["text"]}],
            "usage": P.usage(r["prompt_tokens"] or n_prompt, r["completion_tokens"]),
        }

    @router.post("/translate/prompt")
    async def translate_prompt(request: Request) -> Any:
        req = P.parse_body(await svc.read_body(request), P.TranslationRequest)
        conv, src, tgt = _translation_conversation(req)
        await svc.prepare(conv, req.max_tokens, req.temperature, None, req.seed)
        return {"messages": conv, "source_lang": src, "target_lang": tgt}

    @router.get("/translate/options")
    async def translate_options() -> Any:
        from bayling.serve.translate import STYLES, followup_templates, language_choices

        return {
            "languages": language_choices(),
            "styles": list(STYLES),
            "followups": followup_templates(),
            "default_source": "eng_Latn",
            "default_target": "zho_Hans",
            "model": svc.model_name,
            "max_tokens": svc.cfg.default_max_tokens,
        }

    return router


def _docs_routes(svc: _Served) -> Any:
    """``/openapi.json`` and ``/docs`` (Swagger UI), behind the API key like ``/v1``."""
    from fastapi import APIRouter, Request
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import JSONResponse

    router = APIRouter(dependencies=[svc.auth()])

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Any:
        return JSONResponse(request.app.openapi())

    @router.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="bayling API")

    return router


def _health_routes(svc: _Served) -> Any:
    """``/health``: the model, whether a key is required, and the scheduler's queue and counters."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/health")
    async def health() -> Any:
        return {
            "status": "ok",
            "model": svc.model_name,
            "engine": type(svc.engine).__name__,
            "auth": bool(svc.key),
            "queue": svc.scheduler.snapshot(),
        }

    return router


def _page_routes() -> Any:
    """``/``: the interactive-translation page (one self-contained file, read once)."""
    from fastapi import APIRouter
    from fastapi.responses import HTMLResponse

    page = (resources.files("bayling.serve") / "static" / "index.html").read_text(encoding="utf-8")
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    async def index() -> Any:
        return HTMLResponse(page)

    return router


def _add_guards(app: Any, cfg: ServeConfig) -> None:
    """The request guard and CORS, in the order that makes the guard refuse before CORS adds any header."""
    from starlette.middleware.cors import CORSMiddleware

    # added last = runs first
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cfg.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(RequestGuard, hosts=cfg.host_allow_list(), origins=frozenset(cfg.cors_origins))


def _add_error_handlers(app: Any) -> None:
    """Every error in OpenAI's shape; an unexpected one as a 500 that names only a request id."""
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(P.APIError)
    async def _api_error(request: Any, exc: P.APIError) -> Any:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ClientGone)
    async def _gone(request: Any, exc: ClientGone) -> Any:
        return JSONResponse(P.APIError(499, "client closed the request", code="client_closed").body(), 499)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Any, exc: StarletteHTTPException) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            P.APIError(exc.status_code, str(exc.detail), code=code).body(), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Any, exc: Exception) -> Any:
        err = _internal_error(exc, f"{request.method} {request.url.path}")
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def create_app(engine: Engine, config: ServeConfig | None = None, api_key: str | None = None) -> Any:
    """Build the FastAPI app serving ``engine``.

    Args:
        engine: a loaded engine (see :func:`bayling.engines.load_engine`).
        config: limits, queue and auth settings.
        api_key: the key clients must send; default: the ``config.api_key_env`` environment variable
            (unset or empty = no authentication).

    Returns:
        The ASGI app; its scheduler starts and stops with the app's lifespan.
    """
    fastapi = require("fastapi", "serve")
    svc = _Served(engine, config or ServeConfig(), api_key)
    app = fastapi.FastAPI(
        title="bayling", version="1", lifespan=svc.lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.scheduler, app.state.engine, app.state.config = svc.scheduler, engine, svc.cfg
    _add_guards(app, svc.cfg)
    _add_error_handlers(app)
    for router in (_openai_routes(svc), _translation_routes(svc), _docs_routes(svc), _health_routes(svc)):
        app.include_router(router)
    if svc.cfg.web:
        app.include_router(_page_routes())
    return app


def serve(
    target: str,
    engine: str | None = None,
    host: str | None = None,
    port: int | None = None,
    config: ServeConfig | None = None,
    **overrides: Any,
) -> None:
    """Load ``target`` (a run directory or a model reference) and serve it until interrupted.

    Args:
        target: run directory (its tuned model) or model reference (``gemma-3-270m``, a path, a ``.gguf``).
        engine: ``transformers``, ``llamacpp`` or ``vllm`` (overrides ``config.engine``).
        host: interface to bind (overrides ``config.host``).
        port: port (overrides ``config.port``).
        config: the serve config (defaults when omitted).
        **overrides: any other :class:`ServeConfig` field.
    """
    uvicorn = require("uvicorn", "serve")
    from bayling.engines import load_engine
    from bayling.engines.factory import check_options
    from bayling.progress import console

    changes = {k: v for k, v in dict(engine=engine, host=host, port=port, **overrides).items() if v is not None}
    cfg = dataclasses.replace(config or ServeConfig(), **changes)
    check_options(cfg.engine, cfg.engine_options, "serve.engine_options")  # before any model loads
    with console.status(f"loading {target} ({cfg.engine})"):
        eng = load_engine(target, engine=cfg.engine, options=cfg.engine_options)
    app = create_app(eng, cfg)
    auth = "on" if os.environ.get(cfg.api_key_env) else f"off (set {cfg.api_key_env} to require a key)"
    if not os.environ.get(cfg.api_key_env) and cfg.host not in LOOPBACK:
        console.print(f"[yellow]warning:[/yellow] serving on {cfg.host} without an API key")
    if cfg.host_allow_list() is None:
        console.print(
            f"[yellow]note:[/yellow] Host header not checked on {cfg.host}; list your names in allowed_hosts"
        )
    console.print(
        f"bayling: serving [bold]{getattr(eng, 'model_name', target)}[/bold] ({cfg.engine}) at "
        f"http://{cfg.host}:{cfg.port}  (web page /, API /v1, auth {auth}); Ctrl-C stops"
    )
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        close = getattr(eng, "close", None)  # vLLM: its engine process and GPU memory
        if close is not None:
            close()
