"""Exceptions raised by siteplan.

Every error is a :class:`SiteplanError` mixed with the built-in exception a
Python user would expect (``ValueError`` for bad values, ``FileNotFoundError``
for missing inputs, ...), so callers can catch either.  Messages name the file,
the layer or key, what was found and how to fix it; the CLI prints the message
and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class SiteplanError(Exception):
    """Root of all siteplan errors."""


class ConfigError(SiteplanError, ValueError):
    """The study file is invalid: a key is unknown, missing or out of range."""


class LayerError(SiteplanError, ValueError):
    """An input layer cannot be used as it is (geometry, attributes, extent)."""


class CRSError(LayerError):
    """A layer has no CRS, or one that cannot be brought into the study CRS."""


class RasterError(LayerError):
    """A raster cannot be read or holds implausible values."""


class InputNotFoundError(SiteplanError, FileNotFoundError):
    """An input file named by the study does not exist."""


class OutputError(SiteplanError, OSError):
    """An output cannot be written (read-only folder, output path is an input)."""


class NetworkError(SiteplanError, ValueError):
    """The road network cannot answer a query (no path, nothing to snap to)."""


def raise_all(problems: Iterable[str], error: type[SiteplanError], header: str) -> None:
    """Raise ``error`` once with every problem listed, or return when there is none.

    Parameters
    ----------
    problems : iterable of str
        One sentence per problem found.
    error : type
        The :class:`SiteplanError` subclass to raise.
    header : str
        First line of the message, e.g. ``"study file layers/study.toml"``.

    Examples
    --------
    >>> raise_all([], ConfigError, "study.toml")
    >>> try:
    ...     raise_all(["a is wrong", "b is wrong"], ConfigError, "study.toml")
    ... except ConfigError as err:
    ...     print(err)
    study.toml: 2 problems
      - a is wrong
      - b is wrong
    """
    problems = list(problems)
    if not problems:
        return
    if len(problems) == 1:
        raise error(f"{header}: {problems[0]}")
    lines = "\n".join(f"  - {p}" for p in problems)
    raise error(f"{header}: {len(problems)} problems\n{lines}")
