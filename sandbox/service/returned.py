"""The files a task returned, written under a directory its caller names (``sandbox exec
--return-files DIR``), and none anywhere else.

The names come from the jailed child, so they are untrusted: each must pass the one file-name
rule (``runtimes.files.check_name``: relative, no ``..``, no NUL), and each component is
opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a symbolic link inside DIR
(``DIR/out -> /etc``) is refused, never followed. A file of the same name in DIR is replaced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from runtimes.files import check_name

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def write_under(directory: str, files: Mapping[str, bytes]) -> dict[str, str]:
    """Write ``files`` under ``directory`` (made when missing); what was not written, by
    name, with why. OSError when ``directory`` itself cannot be made or opened."""
    os.makedirs(directory, exist_ok=True)
    root = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    refused: dict[str, str] = {}
    try:
        for name, content in files.items():
            why = check_name(name)
            if why is None:
                try:
                    _write(root, name, content)
                except OSError as exc:
                    why = _why(exc)
            if why is not None:
                refused[name] = why
    finally:
        os.close(root)
    return refused


def _write(root: int, name: str, content: bytes) -> None:
    *parents, last = name.split("/")
    opened: list[int] = []
    at = root
    try:
        for part in parents:
            try:
                os.mkdir(part, 0o755, dir_fd=at)
            except FileExistsError:
                pass
            at = os.open(part, _DIR_FLAGS, dir_fd=at)
            opened.append(at)
        fd = os.open(last, _FILE_FLAGS, 0o644, dir_fd=at)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    finally:
        for fd in opened:
            os.close(fd)


def _why(exc: OSError) -> str:
    import errno

    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "a symbolic link or a file where a directory should be (never followed)"
    return exc.strerror or str(exc)
