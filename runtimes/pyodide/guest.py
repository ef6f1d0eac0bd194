"""What runs inside Pyodide (CPython in WebAssembly): tasks, one at a time, state put back.

``worker.mjs`` loads Pyodide once, copies this package into Pyodide's in-memory file system
and drives these functions for each task frame it reads from its channel:

    boot(preload) -> bytes                         the worker_ready frame (runtimes.protocol)
    prepare(frame) -> [timeout_ms, memory_bytes]   parse and check the task frame
    execute()                                      run it with the ``python`` runtime's own
                                                   executor
    finish() -> bytes                              put the interpreter's state back; the
                                                   result envelope (runtimes.outcome), its
                                                   ``retire`` flag set when the restore found
                                                   what it cannot undo
    timed_out(timeout_ms) -> bytes                 the envelope when the watchdog fired

Whether the worker takes another task is the host's decision (its pool's worker rules): after
``ok`` or ``error`` without ``retire`` it may send one; otherwise it closes the channel, and
the worker exits.

So the snippet contract, the codec rules and the statuses are the ``python`` runtime's, by
construction: the same ``runtimes.python.executor.run`` runs here, and ``runtimes.codec``
encodes the result (msgpack's pure-Python implementation underneath).

After every task the interpreter is put back as it was when the worker became ready (see
``State``): modules the task imported are dropped, the namespaces of the modules loaded
before it and the attributes of their classes are restored, and the code and defaults of
the functions those hold, ``sys`` lists, ``os.environ``,
the working directory, the warnings filters and ``re``'s cache are reset, the random
generator is reseeded, and the task's garbage is collected (inside the task's time, so a
finalizer that loops ends the task as a timeout). What this cannot reach (state inside the
C parts of the interpreter, in-place changes of objects held by those modules) is listed in
the README; ``sys.addaudithook`` is refused, since an audit hook can be neither seen nor
removed and would watch every later task.
"""

from __future__ import annotations

import dataclasses
import gc
import operator
import os
import random
import re
import sys
import types
import warnings
from typing import Any

from runtimes import outcome, protocol
from runtimes.outcome import Status
from runtimes.python import executor

_MISSING = object()
_CODE = operator.attrgetter("__code__")
_DEFAULTS = operator.attrgetter("__defaults__")
_KWDEFAULTS = operator.attrgetter("__kwdefaults__")
# Lists and dicts of ``sys`` that the import system reads: restored by content.
_SYS_CONTAINERS = ("path", "meta_path", "path_hooks", "path_importer_cache", "argv", "warnoptions")


def _no_processes(*_args: Any, **_kwargs: Any) -> Any:
    raise PermissionError(1, "processes are not available in the sandbox")


def _audit(event: str, _args: tuple[Any, ...]) -> None:
    if event == "sys.addaudithook":
        # An exception derived from RuntimeError keeps the new hook out (and is suppressed).
        raise RuntimeError("audit hooks are not available to snippets")


class State:
    """The interpreter's state when the worker became ready, and how to put it back."""

    def __init__(self) -> None:
        self.modules = dict(sys.modules)
        self.namespaces: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        # each class with the live view of its namespace (made once) and a copy of it
        self.classes: dict[int, tuple[type, Any, dict[str, Any]]] = {}
        for name, module in self.modules.items():
            if not isinstance(module, types.ModuleType):
                continue
            namespace = vars(module)
            self.namespaces[name] = (namespace, dict(namespace))
            for value in list(namespace.values()):
                if isinstance(value, type) and not _is_static(value):
                    view = vars(value)
                    self.classes.setdefault(id(value), (value, view, dict(view)))
        # every function those namespaces hold, with its code and defaults: a task can rewrite
        # them in place (``json.dumps.__code__ = ...``) without touching any namespace
        functions: dict[int, types.FunctionType] = {}
        views = [n for n, _ in self.namespaces.values()] + [v for _, v, _ in self.classes.values()]
        for view in views:
            for value in list(view.values()):
                value = getattr(value, "__func__", value)  # a staticmethod's or classmethod's
                if type(value) is types.FunctionType:
                    functions.setdefault(id(value), value)
        self.functions = list(functions.values())
        self.codes = list(map(_CODE, self.functions))
        self.defaults = list(map(_DEFAULTS, self.functions))
        self.kwdefaults = list(map(_KWDEFAULTS, self.functions))
        self.kwdefault_items = [(kw, dict(kw)) for kw in self.kwdefaults if kw is not None]
        self.sys_containers = {name: _copy(getattr(sys, name)) for name in _SYS_CONTAINERS}
        self.recursion_limit = sys.getrecursionlimit()
        self.int_max_str_digits = sys.get_int_max_str_digits()
        self.environ = dict(os.environ)
        self.warning_filters = list(warnings.filters)

    def restore(self) -> bool:
        """Put everything back; False when something was found changed that restoring
        cannot be trusted to undo (the worker then retires after this task)."""
        trusted = True
        sys.settrace(None)
        sys.setprofile(None)
        gc.collect()  # the task's garbage (and its finalizers) first, inside the task's time
        for name in [n for n in sys.modules if n not in self.modules]:
            del sys.modules[name]
        for name, module in self.modules.items():
            if sys.modules.get(name, _MISSING) is not module:
                sys.modules[name] = module
        for namespace, saved in self.namespaces.values():
            if not _same(namespace, saved):
                namespace.clear()
                namespace.update(saved)
        for cls, current, saved in self.classes.values():
            if _same(current, saved):
                continue
            for key in [k for k in current if k not in saved]:
                try:
                    delattr(cls, key)
                except (AttributeError, TypeError):
                    trusted = False
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        trusted = False
        functions = self.functions
        if not (all(map(operator.is_, map(_CODE, functions), self.codes))
                and all(map(operator.is_, map(_DEFAULTS, functions), self.defaults))
                and all(map(operator.is_, map(_KWDEFAULTS, functions), self.kwdefaults))):
            for function, code, defaults, kwdefaults in zip(
                    functions, self.codes, self.defaults, self.kwdefaults, strict=True):
                if function.__code__ is not code:
                    function.__code__ = code
                if function.__defaults__ is not defaults:
                    function.__defaults__ = defaults
                if function.__kwdefaults__ is not kwdefaults:
                    function.__kwdefaults__ = kwdefaults
        for kwdefaults, saved in self.kwdefault_items:
            if not _same(kwdefaults, saved):
                kwdefaults.clear()
                kwdefaults.update(saved)
        for name, saved in self.sys_containers.items():  # in place: the namespace holds them
            container = getattr(sys, name)
            if isinstance(container, dict):
                container.clear()
                container.update(saved)
            else:
                container[:] = saved
        sys.setrecursionlimit(self.recursion_limit)
        sys.set_int_max_str_digits(self.int_max_str_digits)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        os.chdir("/")
        warnings.filters[:] = self.warning_filters  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]
        re.purge()
        random.seed()
        gc.collect()
        return trusted


def _is_static(cls: type) -> bool:
    """Built-in (static) types cannot be changed from Python: nothing to save."""
    return not cls.__flags__ & (1 << 9)  # Py_TPFLAGS_HEAPTYPE


def _same(current: Any, saved: dict[str, Any]) -> bool:
    """Whether a namespace still holds exactly the saved keys and objects, in the same order:
    compared by identity only (in C, about ten times faster than a Python loop), so no
    snippet-defined __eq__ or __hash__ runs here. A key removed and added again counts as a
    change (restored needlessly, never missed)."""
    return (len(current) == len(saved) and all(map(operator.is_, current, saved))
            and all(map(operator.is_, current.values(), saved.values())))


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value)


class _Worker:
    state: State | None = None
    task: protocol.Task | None = None
    envelope: bytes | None = None  # the running task's, once the executor returned it
    memory_bytes = 0  # the running task's memory budget


_worker = _Worker()


def boot(preload: Any = ()) -> bytes:
    """Warm the executor up, import the operator's ``preload`` modules (shared by every task
    of the worker, their state restored after each), take the state every task starts from;
    the ready message, with the preloads that failed."""
    sys.dont_write_bytecode = True
    failed = executor.preload(tuple(str(name) for name in preload))
    executor.rehearse()
    # Emscripten implements system() with Node's child_process, which the worker refuses
    # underneath (a fatal error of the runtime): a clean error for snippets instead.
    import posix

    for module in (os, posix):
        for name in ("system", "popen"):
            if hasattr(module, name):
                setattr(module, name, _no_processes)
    os.chdir("/")
    sys.addaudithook(_audit)
    gc.collect()
    _worker.state = State()
    gc.freeze()  # what exists now is the worker's own: collections after a task skip it
    return protocol.encode(protocol.WorkerReady(python=sys.version.split()[0],
                                                preload_failed=failed))


def prepare(frame: Any) -> Any:
    """Parse one task frame (a JS Uint8Array); [timeout_ms, memory_bytes] for the worker."""
    from pyodide.ffi import to_js

    task = protocol.decode(frame.to_bytes(), (protocol.Task,), max_bytes=protocol.MAX_TASK_BYTES)
    # the worker puts the state back itself (State): the executor's own worker-mode check,
    # which retires a worker at any change of a module, is not needed here
    _worker.task = dataclasses.replace(task, reusable=False)
    _worker.envelope = None
    _worker.memory_bytes = task.memory_bytes
    return to_js([task.timeout_ms or task.cpu_s * 1000, task.memory_bytes])


def execute() -> None:
    """Run the prepared task (its envelope is kept for ``finish``)."""
    task, _worker.task = _worker.task, None
    if task is None:
        raise RuntimeError("execute() without a prepared task")
    _worker.envelope = executor.run(task)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def finish(refused: bool = False) -> Any:
    """Put the interpreter back after a task (the worker calls it with the task's memory
    budget lifted, so a task that used all of it still gets its state undone); the task's
    envelope, asking the host to retire this worker if the restore could not be trusted.
    ``refused``: the budget refused the task memory (see ``after_refusal``)."""
    from pyodide.ffi import to_js

    assert _worker.state is not None and _worker.envelope is not None
    envelope, _worker.envelope = _worker.envelope, None
    if refused:
        envelope = after_refusal(envelope, _worker.memory_bytes)
    if not _worker.state.restore():
        envelope = outcome.with_retire(envelope)
    return to_js(envelope)


def after_refusal(envelope: bytes, memory_bytes: int) -> bytes:
    """The envelope of a task whose memory budget refused it a grow. The allocation that
    asked failed; CPython compiled to WebAssembly turns some such failures into a MemoryError
    and loses others (a C path that returns an error without setting one: SystemError). An
    interpreter error after a refusal is the refusal's: the task's ``memory_limit``, and the
    worker retires, since the interpreter failed inside. What the snippet made of a
    MemoryError it caught (a value, its own error) stays its own."""
    seen = outcome.decode(envelope, max_bytes=len(envelope))
    if seen.status is not Status.ERROR or seen.error is None or seen.error.type != "SystemError":
        return envelope
    return outcome.encode(Status.MEMORY_LIMIT, outcome.out_of_memory(memory_bytes),
                          stdout=seen.stdout, stderr=seen.stderr, truncated=seen.truncated,
                          duration_ms=seen.duration_ms, retire=True)


def exhausted() -> Any:
    """The envelope of a task whose interpreter failed underneath the executor after its
    memory budget refused it a grow (``after_refusal``'s reason): ``memory_limit``, and the
    worker retires (its state was not put back)."""
    from pyodide.ffi import to_js

    _worker.envelope = None
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return to_js(outcome.encode(Status.MEMORY_LIMIT, outcome.out_of_memory(_worker.memory_bytes),
                                retire=True))


def timed_out(timeout_ms: int) -> Any:
    """The envelope of a task the watchdog interrupted, with what it printed until then."""
    from pyodide.ffi import to_js

    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    stdout, truncated = "", False
    if _worker.envelope is not None:  # the executor returned (the interrupt as an error)
        try:
            seen = outcome.decode(_worker.envelope, max_bytes=len(_worker.envelope))
            stdout, truncated = seen.stdout, seen.truncated
        except Exception:  # noqa: BLE001 - a timeout is reported whatever the envelope held
            pass
    _worker.envelope = None
    return to_js(outcome.encode(
        Status.TIMEOUT, f"exceeded the wall-clock timeout of {timeout_ms / 1000:g} s "
        "(interrupted inside the worker)", stdout=stdout, truncated=truncated))
