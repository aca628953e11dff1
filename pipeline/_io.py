"""Atomic output writing and content fingerprints.

Outputs are written to a temporary file in the destination folder and renamed
over the target (``os.replace``), so a reader sees either the previous file or
the new one, never half of one, and an interrupted run leaves the previous
outputs intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from pipeline.errors import OutputError

_CHUNK = 1 << 22


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}",
                                    dir=target.parent)
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror}; choose an output folder you "
                          "can write to ([study] output in the study file)") from None
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # writers such as GDAL want to create the file themselves
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(target: Path, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result over ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def write_text(target: Path, text: str) -> Path:
    """Write text atomically (UTF-8)."""
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(target: Path, data: Any) -> Path:
    """Write JSON atomically."""
    return write_text(target, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False))


def write_frame(target: Path, frame: pd.DataFrame) -> Path:
    """Write a (Geo)DataFrame atomically; the format follows the suffix.

    ``.parquet`` (GeoParquet for GeoDataFrames), ``.csv`` (UTF-8 with BOM so
    spreadsheet programs read Japanese), ``.gpkg``.
    """
    suffix = target.suffix.lower()

    def writer(tmp: Path) -> None:
        if suffix == ".parquet":
            frame.to_parquet(tmp)
        elif suffix == ".csv":
            frame.to_csv(tmp, encoding="utf-8-sig")
        elif suffix == ".gpkg":
            assert isinstance(frame, gpd.GeoDataFrame)
            frame.to_file(tmp, driver="GPKG", layer=target.stem, engine="pyogrio")
        else:  # pragma: no cover - programming error
            raise ValueError(f"unsupported output format {suffix}")

    return write_atomic(target, writer)


def file_digest(path: Path, cache: dict[str, Any] | None = None) -> str:
    """SHA-256 of a file's content, reusing ``cache`` when size and mtime are unchanged.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_text("abc")
    >>> file_digest(p)[:12]
    'ba7816bf8f01'
    """
    stat = path.stat()
    key = str(path.resolve())
    stamp = [stat.st_size, stat.st_mtime_ns]
    if cache is not None and key in cache and cache[key][0] == stamp:
        return str(cache[key][1])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    if cache is not None:
        cache[key] = [stamp, digest]
    return digest


def text_digest(text: str) -> str:
    """SHA-256 of a string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
