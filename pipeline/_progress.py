"""Progress bars for long loops (tqdm on stderr; silent when not on a terminal)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, desc: str, total: int | None = None,
             enabled: bool = True) -> Iterator[T]:
    """Iterate over ``items`` with a tqdm bar when ``enabled`` and stderr is a terminal.

    The CLI's ``--no-progress`` turns bars off; logging stays as it is.

    Examples
    --------
    >>> list(progress(range(3), desc="demo"))
    [0, 1, 2]
    """
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, disable=None if enabled else True,
                    leave=False, unit="it", dynamic_ncols=True)
