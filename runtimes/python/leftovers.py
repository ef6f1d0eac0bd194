"""Worker mode: what a task may leave behind for the next task of the same worker, and the
check that retires the worker when it did.

Every task gets fresh globals and a fresh copy of the builtins (``executor``). What persists
in the process is module state. After a task of worker mode, the worker asks to retire (the
``retire`` flag of its result envelope, runtimes.outcome) when:

- a module the snippet imported, in this task or an earlier one, has a top-level name added,
  removed or bound to another object than when it was first imported; or
- a class such a module holds has an attribute added, removed or rebound.

Between tasks the ``random`` module is reseeded from the kernel, so a task cannot recover
the stream an earlier task drew from. What this does not see, and so may pass from one task
to the next of one worker (one tenant: workers never serve two), is stated in the README:
changes deeper inside module objects (an item put into a module-level dict or list, such as
``re``'s pattern cache), modules reached as attributes rather than imported, and anything
reached through the interpreter's internals.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

# What was first seen of each module a snippet imported: the namespaces to look at again
# (the module's and those of the classes it holds), each with its keys and the ids of its
# values then. The references in ``_kept`` keep those objects alive, so an id can never come
# back as another object's.
_seen: dict[int, list[tuple[Any, tuple[str, ...], tuple[int, ...]]]] = {}
_kept: list[Any] = []
_watching = False


def begin(reusable: bool) -> None:
    global _watching
    _watching = reusable


def note_import(module: Any) -> None:
    """The import guard hands every module it gives a snippet here (worker mode only)."""
    if _watching and isinstance(module, ModuleType) and id(module) not in _seen:
        names = module.__dict__
        # the classes it holds, its own and those it re-exports (json's JSONEncoder lives in
        # json.encoder); the builtin types cannot be changed, so they need no look
        spaces = [names, *(vars(cls) for cls in names.values()
                           if isinstance(cls, type) and cls.__module__ != "builtins")]
        _seen[id(module)] = [(space, tuple(space), tuple(map(id, space.values()))) for space in spaces]
        _kept.append(module)
        _kept.extend(list(space.values()) for space in spaces)


def changed() -> bool:
    """Whether this task left state the next one could see (see the module docstring)."""
    if not _watching:
        return False
    # identities only, never ==: a snippet's object could claim to equal what it replaced
    return any(tuple(space) != keys or tuple(map(id, space.values())) != ids
               for spaces in _seen.values() for space, keys, ids in spaces)


def reseed() -> None:
    """Between two tasks of a worker: a new random stream for the next one."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()

