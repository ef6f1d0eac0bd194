"""The C allocator of the service's own long-lived processes (``serve``, ``runner``).

glibc serves every allocation above its mmap threshold (128 KiB, raised only to the size of
the last block freed) with a fresh mmap, and gives it back on free: each 1 MB result a broker
or runner handles then costs page faults on every copy (measured here: 0.8 ms per 1 MB copy,
0.05 ms with the thresholds below). Raising the thresholds keeps such blocks in the heap for
reuse, at the price of up to ``TRIM`` bytes of freed memory the process keeps. Applied only
to our own processes, never to a host application's (an embedded ``Client``).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP = 32 * 1024 * 1024  # blocks larger than this still get their own mapping
TRIM = 64 * 1024 * 1024  # free memory at the top of the heap beyond this goes back


def keep_large_blocks() -> bool:
    """Tune glibc's allocator as above; False where there is no glibc ``mallopt``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM))
