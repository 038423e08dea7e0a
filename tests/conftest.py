"""Every test gets a cache directory of its own: ``convert --check`` caches by default under
``$XDG_CACHE_HOME``, and a test must neither read another test's results nor fill the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
