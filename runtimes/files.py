"""A task's own writable directory inside the jail, and the files that go in and come out.

The jail's root is read-only and shared by every child of the pool. A pool whose operator
gives tasks files (``files_mb``) has children that each make a directory of their own, as a
step of their set-up while they still hold the one privilege the jail keeps for this
(CAP_SYS_ADMIN in the jail's user namespace, ``private_workdir``), then drop it for good
(``drop_capabilities``) before their seccomp filter and long before any task:

* a mount namespace of the child's own (``unshare(CLONE_NEWNS)``, mounts private), so what
  it mounts no sibling sees;
* a fresh tmpfs at ``WORKDIR`` (``/work``), ``size`` bytes and a bounded number of inodes,
  no devices, no set-uid, no exec: the size cap is the kernel's (a write past it fails with
  ENOSPC, a clean OSError for the snippet), and its pages count against the jail's memory
  cgroup;
* the working directory there, so that a snippet's relative paths land in it.

It dies with the child: nothing of it reaches another task (each task has its own process,
its own namespace, its own tmpfs) or the host (the host never reads it; the child sends what
the task asked back for in its envelope).

Names are relative POSIX paths of at most ``MAX_DEPTH`` components, none empty, ``.`` or
``..``, no NUL, each at most 255 bytes (``check_name``: the same rule the broker's protocol
applies, held to it by a test). Files go in before the snippet runs (``put``: a fresh
directory, created with O_EXCL and O_NOFOLLOW); what the task wrote comes back on request
(``collect``): regular files only, read with O_NOFOLLOW; a symlink (which the jail's filter
does not let a snippet make anyway), a device or a socket is named in ``skipped`` with why,
never followed. A session's process keeps its directory from call to call (no ``clear``):
a call's files go in over what is there (``put(..., replace=True)``), and a call that asks
for its files back gets all the directory holds.
"""

from __future__ import annotations

import os
import stat
from typing import Any

WORKDIR = "/work"
MAX_DEPTH = 16
MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 1024
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
# ctypes and libc on first use: the pyodide guest imports this module (through the jail's
# protocol, for ``check_name``), and has neither
_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def prepare() -> None:
    """In the zygote of a pool whose tasks have files, before its children fork: the library,
    its functions and the array types that ``private_workdir`` and ``drop_capabilities`` use,
    made once. Each is a class or a cached attribute made on first use; made in a child, a
    worker's start would find classes made since the zygote's survey, and plan again
    (runtimes/python/leftovers.py)."""
    libc = _c()
    for name in ("unshare", "mount", "capset"):
        getattr(libc, name)
    _capability_types()


_capabilities: Any = None  # capset's header and data types, made once


def _capability_types() -> Any:
    global _capabilities
    if _capabilities is None:
        import ctypes

        _capabilities = (ctypes.c_uint32 * 2, ctypes.c_uint32 * 6)
    return _capabilities


def _errno() -> str:
    import ctypes

    return os.strerror(ctypes.get_errno())


class FilesError(Exception):
    """The directory could not be made (the child cannot serve a task with files)."""


def check_name(name: object) -> str | None:
    """Why ``name`` is not a file name a task may use, or None when it is."""
    if not isinstance(name, str) or not name:
        return "a file name must be a non-empty string"
    if len(name) > MAX_PATH_CHARS:
        return f"file name {name[:40]!r}... is over {MAX_PATH_CHARS} characters"
    if "\x00" in name:
        return f"file name {name!r} holds a NUL"
    if name.startswith("/"):
        return f"file name {name!r} is absolute (names are relative to the task's directory)"
    parts = name.split("/")
    if len(parts) > MAX_DEPTH:
        return f"file name {name!r} is more than {MAX_DEPTH} directories deep"
    for part in parts:
        if part in ("", ".", ".."):
            return f"file name {name!r} has a {part or 'empty'!r} component"
        try:
            if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                return f"file name {name!r} has a component over {MAX_NAME_BYTES} bytes"
        except UnicodeEncodeError:
            return f"file name {name!r} is not valid Unicode"
    return None


def private_workdir(size_bytes: int, max_files: int) -> None:
    """The child's own tmpfs at WORKDIR, in a mount namespace of its own (see above)."""
    libc = _c()
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise FilesError(f"unshare(CLONE_NEWNS): {_errno()}")
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise FilesError(f"making the mounts private: {_errno()}")
    options = f"size={size_bytes},nr_inodes={max_files + 64},mode=0700".encode()
    if libc.mount(b"tmpfs", WORKDIR.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                  options) != 0:
        raise FilesError(f"mounting the task's tmpfs: {_errno()}")
    os.chdir(WORKDIR)


def drop_capabilities() -> None:
    """Every capability gone, effective, permitted and inheritable (the ambient set follows
    the permitted one): nothing the child runs after this holds any."""
    header_type, data_type = _capability_types()
    header = header_type(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = data_type()  # two of {effective, permitted, inheritable}, all 0
    if _c().capset(header, data) != 0:
        raise FilesError(f"capset: {_errno()}")


def put(files: dict[str, bytes], *, replace: bool = False) -> None:
    """The task's files, written into its (fresh) directory. ``replace``: a session's
    directory, which its earlier calls filled: a file of the same name is replaced (unlinked
    first, never written through: a name that is a link is the link, not its target)."""
    for name, content in files.items():
        if check_name(name) is not None:  # the host checked; a bad name never lands
            continue
        parent = os.path.dirname(name)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        if replace:
            try:
                info = os.lstat(name)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISDIR(info.st_mode):
                    os.unlink(name)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def collect(budget_bytes: int, max_files: int) -> tuple[dict[str, bytes], dict[str, str]]:
    """(files, skipped): every regular file under the directory, by its relative name, in
    name order while they fit in ``budget_bytes`` and ``max_files``; what was not returned,
    with why."""
    found: list[str] = []
    skipped: dict[str, str] = {}
    _walk(".", "", found, skipped)
    files: dict[str, bytes] = {}
    left = budget_bytes
    for name in sorted(found):
        if len(files) >= max_files:
            skipped[name] = f"over {max_files} files"
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            skipped[name] = f"cannot be read: {exc.strerror}"
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                skipped[name] = "not a regular file"
                continue
            if info.st_size > left:
                skipped[name] = "over the result's size cap (result_bytes)"
                continue
            content = os.read(fd, info.st_size) if info.st_size else b""
        finally:
            os.close(fd)
        files[name] = content
        left -= len(content)
    return files, skipped


def clear() -> None:
    """Empty the directory (a worker's next task starts from an empty one, as a process's
    first does). Symbolic links are removed, never followed."""
    for entry in os.scandir(WORKDIR):
        _remove(entry)


def _remove(entry: os.DirEntry[str]) -> None:
    if entry.is_dir(follow_symlinks=False):
        for inner in os.scandir(entry.path):
            _remove(inner)
        os.rmdir(entry.path)
    else:
        os.unlink(entry.path)


def _walk(path: str, prefix: str, found: list[str], skipped: dict[str, str]) -> None:
    with os.scandir(path) as entries:
        for entry in entries:
            name = f"{prefix}{entry.name}"
            if entry.is_symlink():
                skipped[name] = "a symbolic link (never followed)"
            elif entry.is_dir(follow_symlinks=False):
                if name.count("/") + 1 < MAX_DEPTH:
                    _walk(entry.path, f"{name}/", found, skipped)
                else:
                    skipped[name] = f"more than {MAX_DEPTH} directories deep"
            elif entry.is_file(follow_symlinks=False):
                found.append(name)
            else:
                skipped[name] = "not a regular file"
