"""Errors that the CLI turns into one clear line instead of a traceback.

Every user-facing failure (bad file, bad config key, unknown language, unknown model) raises a
subclass of :class:`BaylingError`; ``bayling.cli.main`` prints ``bayling: error: <message>`` and
exits with status 2. Programming errors stay ordinary exceptions so their tracebacks survive.
"""

from __future__ import annotations


class BaylingError(Exception):
    """A user-facing error: the message alone must say what is wrong and where."""


class ConfigError(BaylingError, ValueError):
    """A config file or override is malformed (unknown key, wrong type, bad value)."""


class DataError(BaylingError, ValueError):
    """An input data file is malformed; the message names ``file:line`` and what was expected."""


class UnknownLanguageError(BaylingError, KeyError):
    """A language code or name is not in the language table."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ModelError(BaylingError):
    """A model cannot be found or loaded."""


class MissingDependencyError(BaylingError, ImportError):
    """An optional extra is not installed; the message names the ``pip install`` to run."""


def require(module: str, extra: str):
    """Import an optional dependency or fail with the extra that provides it.

    Args:
        module: importable module name, e.g. ``"peft"``.
        extra: the bayling extra that installs it, e.g. ``"train"``.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError(f"'{module}' is not installed; run: pip install 'bayling[{extra}]'") from exc
