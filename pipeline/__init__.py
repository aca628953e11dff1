"""siteplan: site selection for public buildings under tsunami and flood hazard."""

from __future__ import annotations

__version__ = "0.1.0"
