"""Fixtures of the AWX tests (helpers in awx_testlib.py)."""

from __future__ import annotations

import pytest

from awx_testlib import REPO, Awx, FakeAWX


@pytest.fixture()
def awx(tmp_path):
    """A fresh fake AWX, listing playbooks from this checkout, on a free 127.0.0.1 port; stopped after the test."""
    fake = FakeAWX(str(REPO)).start()
    try:
        yield Awx(fake, tmp_path)
    finally:
        fake.stop()
