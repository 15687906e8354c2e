"""The store each store test writes into: a fresh directory per test."""

from __future__ import annotations

import pytest

from trendcli.adversarial.store import AdvStore


@pytest.fixture
def st(tmp_path):
    return AdvStore(tmp_path / "adv")
