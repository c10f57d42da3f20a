"""The Hugging Face Hub as the HF tools use it: one switch for offline, the standard variables, one-line errors.

Models (:mod:`bayling.models`), data sets (:mod:`bayling.hub_data`) and ``bayling push`` talk to the Hub
through ``huggingface_hub``/``datasets`` and share what is here:

* the endpoint, token and cache come from the standard variables (``HF_ENDPOINT``, ``HF_TOKEN`` or
  ``hf auth login``, ``HF_HOME``/``HF_HUB_CACHE``), read when a call is made rather than when a library
  was imported, so setting them inside a process works too;
* offline (cache only) is ``BAYLING_OFFLINE=1`` (what ``bayling --offline`` sets) or ``HF_HUB_OFFLINE=1``.
  Nothing else switches the network off: verbosity never does;
* a failure becomes one line naming the repository and what to do (log in, accept the terms, check the
  name, go online once), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from bayling.errors import BaylingError

_TRUE = {"1", "ON", "YES", "TRUE"}
OFFLINE_VARS = ("BAYLING_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in _TRUE


def is_offline() -> bool:
    """True when bayling must use the local cache only (``BAYLING_OFFLINE`` / ``HF_HUB_OFFLINE``)."""
    if any(_true(os.environ.get(v)) for v in OFFLINE_VARS):
        return True
    constants = sys.modules.get("huggingface_hub.constants")  # read at its import: it refuses requests then
    return bool(constants is not None and constants.HF_HUB_OFFLINE)


def go_offline() -> None:
    """Cache-only from now on, for bayling and for the HF libraries, including those already imported."""
    os.environ["BAYLING_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    for module, names in (
        ("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
        ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")),
    ):
        mod = sys.modules.get(module)
        for name in names if mod is not None else ():
            setattr(mod, name, True)


def endpoint() -> str:
    """The Hub URL: ``$HF_ENDPOINT``, else huggingface_hub's default (https://huggingface.co)."""
    env = os.environ.get("HF_ENDPOINT")
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def cache_dir() -> str:
    """The HF hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return os.path.expanduser(os.environ.get("HF_HUB_CACHE") or os.environ["HUGGINGFACE_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def api():
    """An ``HfApi`` on :func:`endpoint` (token from ``HF_TOKEN`` or the saved login)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint())


def offline_error(kind: str, repo_id: str, error: type[BaylingError]) -> BaylingError:
    what = "data set" if kind == "dataset" else kind
    return error(
        f"{what} '{repo_id}' is not in the local Hugging Face cache ({cache_dir()}) and bayling is offline "
        "(--offline, BAYLING_OFFLINE or HF_HUB_OFFLINE); run once online to download it, or give a local path"
    )


def _chain(e: BaseException) -> list[BaseException]:
    """``e`` and the exceptions it was raised from (datasets wraps the Hub's errors)."""
    chain = [e]
    while len(chain) < 8:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
    return chain


def is_connection_error(e: BaseException) -> bool:
    """A network failure (no route, DNS, timeout) rather than an answer from the Hub, anywhere in the chain."""
    names = {"ConnectError", "TimeoutException", "ConnectionError", "ConnectTimeout"}
    return any(names & {c.__name__ for c in type(x).__mro__} for x in _chain(e))


def hub_error(kind: str, repo_id: str, e: BaseException, error: type[BaylingError]) -> BaylingError | None:
    """One line for a Hub failure of ``repo_id`` (a ``model``/``dataset``), or None if ``e`` is not one.

    Args:
        kind: ``model`` or ``dataset`` (the words and URLs differ).
        repo_id: the repository, as the user wrote it.
        e: the exception raised by huggingface_hub/datasets.
        error: the :class:`BaylingError` subclass to return.
    """
    from huggingface_hub import errors

    what = "data set" if kind == "dataset" else kind
    if is_offline() and (is_connection_error(e) or any(type(x).__name__ == "OfflineModeIsEnabled" for x in _chain(e))):
        return offline_error(kind, repo_id, error)
    for x in _chain(e):
        status = getattr(getattr(x, "response", None), "status_code", None)
        text = str(x)
        if type(x).__name__ == "DatasetNotFoundError":  # datasets re-raises the Hub's errors as this, text only
            if "is a gated dataset" in text:
                return gated_error(kind, repo_id, "You must be authenticated" in text or not _has_token(), error)
            if "doesn't exist on the Hub" in text:
                return not_found_error(kind, repo_id, error)
            if text.startswith("Revision "):
                return error(f"{what} '{repo_id}': revision not found on {endpoint()} (check the ?revision=)")
        if isinstance(x, errors.GatedRepoError):
            return gated_error(kind, repo_id, status == 401 or not _has_token(), error)
        if isinstance(x, errors.RevisionNotFoundError):
            return error(f"{what} '{repo_id}': revision not found on {endpoint()} (check the revision)")
        if isinstance(x, errors.RepositoryNotFoundError):
            return not_found_error(kind, repo_id, error)
        if isinstance(x, getattr(errors, "RemoteEntryNotFoundError", errors.EntryNotFoundError)):
            return error(f"{what} '{repo_id}': a file was not found on {endpoint()} ({_first_line(x)})")
        if isinstance(x, errors.HfHubHTTPError) and status is not None:
            return error(f"{what} '{repo_id}': the Hub at {endpoint()} answered HTTP {status} ({_first_line(x)})")
        if type(x).__name__ == "OfflineModeIsEnabled":
            return offline_error(kind, repo_id, error)
        if is_connection_error(x) and not isinstance(x, errors.HfHubHTTPError):
            return error(
                f"cannot reach {endpoint()} to get {what} '{repo_id}' ({type(x).__name__}); check the network "
                "or HF_ENDPOINT, or use --offline with a copy already in the cache"
            )
    return None


def gated_error(kind: str, repo_id: str, anonymous: bool, error: type[BaylingError]) -> BaylingError:
    """A gated repository: without a token (``anonymous``) log in; with one, accept the terms on the Hub."""
    what = "data set" if kind == "dataset" else kind
    url = repo_url(kind, repo_id)
    if anonymous:
        return error(
            f"{what} '{repo_id}' is gated: accept its terms at {url} and log in "
            "(`hf auth login`, or set HF_TOKEN to a token of that account)"
        )
    return error(
        f"{what} '{repo_id}' is gated and your Hugging Face token has no access yet: accept its terms at "
        f"{url} (with the account of HF_TOKEN / `hf auth login`) and wait for approval if it asks for one"
    )


def not_found_error(kind: str, repo_id: str, error: type[BaylingError]) -> BaylingError:
    what = "data set" if kind == "dataset" else kind
    return error(
        f"{what} '{repo_id}' not found on {endpoint()}: check the name (org/name); "
        "a private repository also needs HF_TOKEN or `hf auth login`"
    )


def _first_line(e: BaseException) -> str:
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    return lines[0] if lines else type(e).__name__


def _has_token() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


@contextlib.contextmanager
def download_progress() -> Iterator[None]:
    """Show huggingface_hub's download bars (on a terminal) unless ``BAYLING_NO_PROGRESS=1``.

    Quiet mode turns library progress bars off globally (transformers' "Loading weights" bars); a
    download of gigabytes still deserves one, so it is switched back on for the duration.
    """
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    show = os.environ.get("BAYLING_NO_PROGRESS") != "1" and not _true(os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"))
    if show and was_disabled:
        enable_progress_bars()
    try:
        yield
    finally:
        if show and was_disabled:
            disable_progress_bars()


def human_size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def repo_url(kind: str, repo_id: str) -> str:
    return f"{endpoint()}/{'datasets/' if kind == 'dataset' else ''}{repo_id}"


def snapshot_path(path: str | Path) -> str | None:
    """``org/name@commit`` for a directory inside the HF cache (``models--org--name/snapshots/SHA``), else None."""
    parts = Path(path).resolve().parts
    for i, part in enumerate(parts[:-2]):
        if part.startswith(("models--", "datasets--")) and parts[i + 1] == "snapshots":
            return part.split("--", 1)[1].replace("--", "/") + "@" + parts[i + 2]
    return None
