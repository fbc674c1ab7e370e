"""A store in the test's own data folder (recovery tests put the images folder beside it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cauldrond.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "data" / "cauldron.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()
