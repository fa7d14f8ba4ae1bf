"""Fixtures of the traffic tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from router_world import World, open_world


@pytest.fixture(params=["memory", "kube"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """A cluster for a router test: in memory, then over HTTP against tests/kubeapi.py."""
    async with open_world(request.param, tmp_path) as found:
        yield found
