"""A child about to be killed goes back to the background nice level first
(``sandbox.host.pools.background``), so its teardown yields the CPU to the next task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sandbox.host.pools import background
from sandbox.jail.mounts import BACKGROUND_NICE


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
def test_a_process_is_lowered_to_the_background_nice_level(stopped):
    """Stopped: a FROZEN child (it stopped itself after its result) is what a release mostly
    kills."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        if stopped:
            os.kill(proc.pid, signal.SIGSTOP)
        assert background(proc.pid) is True
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == BACKGROUND_NICE
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_is_gone_is_reported_so():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert background(proc.pid) is False
