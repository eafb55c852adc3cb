"""Fixtures for the monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitoring.bikes import Served, train_bike


@pytest.fixture(scope="session")
def bike_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("bike-ws")
    yield train_bike(root, "bike")


@pytest.fixture
def fresh(bike_model: Served) -> Served:
    """The bike model with an empty prediction log and no labels."""
    for sub in ("predictions", "feedback"):
        folder = bike_model.root / sub / bike_model.name
        for part in folder.glob("*"):
            part.unlink()
    return bike_model
