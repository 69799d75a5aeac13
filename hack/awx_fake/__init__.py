"""A small stateful fake of AWX 24.6.1's /api/v2 for testing playbooks/awx_configure.yml (see server.py)."""

from .server import FakeAWX

__all__ = ['FakeAWX']
