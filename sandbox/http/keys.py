"""The HTTP API's bearer keys, each mapped to a principal (the tenant a task belongs to).

The file (``api_keys_file``) holds one ``principal key`` per line; blank lines and lines
starting with ``#`` are skipped. It is kept like the CURVE secret keys: owned by the user the
daemon runs as and readable by nobody else (mode 0600 or stricter), or the daemon refuses to
start. A key is at least 16 characters; two principals may not share one. Keys are compared
in constant time and never logged or echoed: an error names the file and the line, not the
key.
"""

from __future__ import annotations

import hmac
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.errors import ConfigError

MIN_KEY_CHARS = 16
_PRINCIPAL = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: a bearer token's letters


@dataclass(frozen=True)
class ApiKeys:
    """The keys, key -> principal. ``principal(header)`` for an Authorization header."""

    by_key: Mapping[str, str]

    @classmethod
    def load(cls, path: str) -> ApiKeys:
        """Read and check the keys file; ConfigError naming the file (and line) if wrong."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ConfigError(f"api_keys_file {path}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, encoding="utf-8") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"api_keys_file {path}: not a regular file")
            if st.st_mode & 0o077:
                raise ConfigError(f"api_keys_file {path}: mode {stat.S_IMODE(st.st_mode):04o} lets "
                                  "others read the keys (chmod 600 it)")
            if st.st_uid != os.geteuid():
                raise ConfigError(f"api_keys_file {path}: owned by uid {st.st_uid}, not by "
                                  f"this user ({os.geteuid()})")
            try:
                text = f.read()
            except UnicodeDecodeError as exc:
                raise ConfigError(f"api_keys_file {path}: not UTF-8 text") from exc
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, source: str = "api_keys_file") -> ApiKeys:
        by_key: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            where = f"{source} line {number}"
            if len(parts) != 2:
                raise ConfigError(f"{where}: expected `principal key`")
            principal, key = parts
            if not _PRINCIPAL.fullmatch(principal):
                raise ConfigError(f"{where}: a principal is 1 to 64 of A-Z a-z 0-9 . _ @ -")
            if len(key) < MIN_KEY_CHARS or not _KEY.fullmatch(key):
                raise ConfigError(f"{where}: a key is at least {MIN_KEY_CHARS} printable "
                                  "characters without spaces")
            if key in by_key:
                raise ConfigError(f"{where}: this key is already {by_key[key]}'s")
            by_key[key] = principal
        if not by_key:
            raise ConfigError(f"{source}: no keys")
        return cls(by_key)

    def principal(self, authorization: str | None) -> str | None:
        """The principal an ``Authorization: Bearer KEY`` header names, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = token.strip().encode("utf-8", "replace")
        found = None
        for key, principal in self.by_key.items():
            # every key is compared, so the time taken does not say which one came close
            if hmac.compare_digest(key.encode(), given):
                found = principal
        return found
