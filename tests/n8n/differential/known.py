"""Known differences between n8n's own JavaScript runner and ours on the corpus, as of today's
main: case id -> (category, reason). The differential test asserts each of these AS a
difference, so that one which gets fixed fails the test until it is taken off this list.

Categories:

- ``isolation``: intended. What our jail denies on purpose (host environment, files,
  network, processes) or a limit of ours; kept.
- the others name a gap of our Code node layer to close (issue 20); each reason says what
  n8n's runner does.
"""

from __future__ import annotations

KNOWN: dict[str, tuple[str, str]] = {}
