"""A sandbox seen through one runtime, for the tests of one runtime (the pyodide fixtures
of ``conftest.py`` and the tests that make their own sandboxes). A module of its own, not
``conftest``: a test that imports ``conftest`` gets whichever conftest pytest loaded last
(``tests/security/conftest.py`` among them)."""

from __future__ import annotations

# How long after a timeout a worker is killed from outside, in the tests: longer than the
# default, so that on this shared, loaded machine a worker whose interrupt does work always
# answers first (the tests of a timeout tell the two apart by their messages).
PYODIDE_GRACE_S = 2.0


class OneRuntime:
    """A sandbox seen through one runtime: ``run(code, data, **options)``."""

    def __init__(self, sb, runtime: str) -> None:
        self.sandbox = sb
        self.runtime = runtime

    def run(self, code: str, data=None, **options):
        return self.sandbox.run(self.runtime, code, data, **options)

    def wait_ready(self, count: int | None = None, timeout_s: float = 120.0) -> bool:
        """Until ``count`` workers (default: the whole pool) are idle; False on timeout."""
        import time

        want = self.sandbox.config.size if count is None else count
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.sandbox.snapshot()[self.runtime]["counts"]["idle"] >= want:
                return True
            time.sleep(0.05)
        return False
