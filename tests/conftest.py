"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The reference fixtures in ``../shared/fixtures``; skip when absent."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip("../shared/fixtures is absent")
    return path


@pytest.fixture(scope="session")
def shared_context() -> Path:
    """The domain brief folder ``../shared/context``; skip when absent."""
    path = SHARED / "context"
    if not path.is_dir():
        pytest.skip("../shared/context is absent")
    return path
