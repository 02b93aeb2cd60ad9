"""An app per test over a private copy of the 'tiny' collection, driven through TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vecdial.service.app import create_app
from vecdial.service.settings import Settings


@pytest.fixture
def make_client(tiny_data_dir) -> Iterator[Callable[..., TestClient]]:
    """make_client(**settings) -> a started TestClient over tiny_data_dir (closed after the test)."""
    clients: list[TestClient] = []

    def make(**overrides) -> TestClient:
        # The first text query loads the encoder, which on a loaded machine can pass the default
        # request_timeout_s (30 s); tests of the timeout itself pass their own.
        settings = Settings(data_dir=tiny_data_dir, log_level="warning", **{"request_timeout_s": 600.0, **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()  # runs the lifespan: collections opened, ready
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def outside(demo_dataset) -> list[list[float]]:
    """Real demo vectors that are not in 'tiny', as JSON lists."""
    return np.asarray(demo_dataset.vectors[1000:1010]).tolist()


@pytest.fixture(scope="session")
def inside(demo_dataset) -> list[list[float]]:
    """The first vectors of 'tiny', as JSON lists (their ids: demo_dataset.ids[:10])."""
    return np.asarray(demo_dataset.vectors[:10]).tolist()
