"""How the programs log (``sandbox serve``, ``sandbox runner``): one line per record on
stderr, time and level first, or one JSON object per line for a log collector.

Routine events (the start, a runner that registers or is lost, a drain) are INFO; what an
operator should look at is WARNING or above. The level and the format are settings of the
schema (``log_level``, ``log_format``: TOML, ``SANDBOX_*``, flags), so the daemon's local
runners log as the daemon does.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message (and the
    traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime

        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Log every record of ``level`` or above to ``stream`` (stderr) in ``fmt`` ("text" or
    "json"); replaces the handlers the root logger had. Returns the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
