"""The worked-example notebooks run top to bottom and show the published results.

Each notebook in ``notebooks/`` is executed with nbclient in a fresh kernel, in a
temporary working directory, with ``TMPDIR`` pointing there too (the notebooks write
only into ``tempfile.mkdtemp()`` folders). The cell tagged ``summary`` ends each
notebook with a dict literal of its key results, which the tests read back. The
kernel is ipykernel's own ``python3`` spec for the interpreter running the tests
(``sys.executable``), never a kernel installed elsewhere on the machine, so a fresh
``pip install -e .[test]`` needs no ``ipykernel install``.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIXTURES = ROOT.parent / "shared" / "fixtures"
FIXTURES_LINE = 'FIXTURES = Path(pipeline.__file__).parents[2] / "shared" / "fixtures"'
CELL_TIMEOUT = 300  # seconds per cell; each notebook takes a few seconds in all



class ThisPythonKernel(AsyncKernelManager):
    """A kernel manager whose ``python3`` is ipykernel's built-in spec for ``sys.executable``.

    No kernelspec folder is searched, so a ``python3`` kernel installed for another
    Python (in ``~/.local/share/jupyter``, say) cannot take the tests elsewhere.
    """

    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[])


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file below ``folders``: what a notebook must not touch."""
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for folder in folders if folder.is_dir()
            for p in folder.rglob("*") if p.is_file()}


def run_notebook(name: str, tmp_path: Path, *,
                 replace: tuple[str, str] | None = None) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>`` in ``tmp_path``; return the executed notebook.

    ``replace`` substitutes text in every code cell first (to exercise a fallback).
    The repository's ``layers/``, ``maps/`` and ``notebooks/`` folders and the shared
    fixtures must be left exactly as they were.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if replace is not None:
        old, new = replace
        assert any(old in c.source for c in nb.cells), f"{name}: {old!r} not found"
        for cell in nb.cells:
            cell.source = cell.source.replace(old, new)
    guarded = (ROOT / "layers", ROOT / "maps", NOTEBOOKS, FIXTURES)
    before = _snapshot(*guarded)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            kernel_manager_class=ThisPythonKernel,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env={**os.environ, "TMPDIR": str(tmp_path)})
    assert _snapshot(*guarded) == before, f"{name} wrote into the repository or the fixtures"
    return nb


def summary(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The dict shown by the cell tagged ``summary``."""
    cells = [c for c in nb.cells if "summary" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'summary'"
    results = [o for o in cells[0].outputs if o.output_type == "execute_result"]
    return ast.literal_eval(results[0].data["text/plain"])


def stderr_text(nb: nbformat.NotebookNode) -> str:
    """Everything the cells wrote to stderr (warnings land there)."""
    return "".join(o.text for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream" and o.name == "stderr")


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_kernel_is_this_python() -> None:
    spec = ThisPythonKernel(kernel_name="python3").kernel_spec
    assert spec is not None and spec.argv[0] == sys.executable


def test_notebook_names() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == [
        "01_quickstart.ipynb", "02_bring_your_own_data.ipynb", "03_site_comparison.ipynb",
        "04_coverage.ipynb"]


def test_01_quickstart(tmp_path: Path) -> None:
    nb = run_notebook("01_quickstart.ipynb", tmp_path)
    marks = summary(nb)
    assert {s: marks[s] for s in ("S1", "S2", "S3")} == {"S1": "×", "S2": "◎", "S3": "△"}
    assert marks["S0"] == "×"                       # the current hall, under the run-up
    assert "Warning" not in stderr_text(nb)
    html = [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})
            and "srcdoc=" in o.data["text/html"]]
    assert len(html) == 1 and "leaflet" in html[0].data["text/html"].lower()
    assert list(tmp_path.glob("siteplan-quickstart-*/maps/index.html"))


def test_02_bring_your_own_data(tmp_path: Path) -> None:
    nb = run_notebook("02_bring_your_own_data.ipynb", tmp_path)
    result = summary(nb)
    _check_byod(result)
    assert "Warning" not in stderr_text(nb)
    source = "real" if (FIXTURES / "gsi_dem").is_dir() else "synthetic"
    shown = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert ("FG-GML-5238-74-00-DEM5A-20161001.xml" in shown) == (source == "real")


def test_02_without_the_fixtures(tmp_path: Path) -> None:
    """On a machine without ../shared the notebook generates its GSI tile."""
    if not (FIXTURES / "gsi_dem").is_dir():
        pytest.skip("the fixtures are absent: test_02_bring_your_own_data ran this path")
    nb = run_notebook("02_bring_your_own_data.ipynb", tmp_path,
                      replace=(FIXTURES_LINE, 'FIXTURES = Path("/nonexistent")'))
    _check_byod(summary(nb))
    assert list(tmp_path.glob("siteplan-byod-*/study/FG-GML-*-synthetic.xml"))


def _check_byod(result: dict[str, Any]) -> None:
    assert result["crs"] == "EPSG:6676"             # JGD2011 zone VIII, picked by "auto"
    assert result["dem"] == "DEM5A"
    assert result["sites"] == 4
    assert 0.5 < result["on_dem_S4"] < 0.95         # S4 reaches beyond the tile
    # the repaired rank polygon, and S4 partly off the DEM (hazard and earthwork)
    assert result["warnings"] == 3
    assert result["overall"]["S1"] == "×"           # floods in the planned flood: vetoed
    assert result["overall"]["S2"] == "○"


def test_03_site_comparison(tmp_path: Path) -> None:
    nb = run_notebook("03_site_comparison.ipynb", tmp_path)
    result = summary(nb)
    assert result["overall"] == {"S1": "×", "S2": "◎", "S3": "△"}
    assert result["margin_m"] == {"S1": 2.1, "S2": 28.1, "S3": 31.1}
    assert result["cut_m3"] == {"S1": 630_000, "S2": 135_000, "S3": 130_000}
    assert result["programme_m2"] == 4266.9
    shares = result["first_share_S2"]
    assert shares[0.0] == shares[0.5] == 1.0        # first in every draw up to ±50 %
    assert 0.8 < shares[1.0] < 1.0                  # site 3 sometimes overtakes beyond
    assert "Warning" not in stderr_text(nb)
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3                         # margins, profiles.png, street profiles


def test_04_coverage(tmp_path: Path) -> None:
    nb = run_notebook("04_coverage.ipynb", tmp_path)
    result = summary(nb)
    assert result["districts"] == 99 and result["centres"] == 10
    assert result["threshold_m"] == 1000.0
    assert result["beyond"] == 45
    assert 0 < result["beyond_by_network_only"] < result["beyond"]
    # a centre on the far side of the river serves most of those cut off by it
    assert result["best_new_centre"] == "Riverbank lot (south bank)"
    assert result["beyond_after"] == 37
    assert "Warning" not in stderr_text(nb)
    maps = list(tmp_path.glob("siteplan-coverage-*/coverage.html"))
    assert len(maps) == 1 and "cdn." not in maps[0].read_text(encoding="utf-8")
