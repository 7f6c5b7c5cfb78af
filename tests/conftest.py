"""Shared fixtures. Tests needing ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCDEEP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_file(name: str) -> Path:
    """Path of a file in ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (real datasets live in ../shared/data beside the checkout; CI has them)")
    return path


@pytest.fixture(scope="session")
def pbmc_demo():
    from scdeep_core.datasets import pbmc_demo

    return pbmc_demo()


@pytest.fixture()
def small_sim():
    from scdeep_core.datasets import simulate_counts

    return simulate_counts(n_cells=300, n_genes=300, n_groups=3, separation=2.0, seed=1)
