"""Run one Python snippet inside a child: the snippet contract, output capture, errors.

Contract: the code is the BODY of a function ``snippet(data)``; ``return`` gives the result;
``print()`` output (stdout and stderr) is captured up to the task's cap, then truncated with a
flag. The body is wrapped at the AST level, so line numbers in tracebacks are the snippet's
own. Errors come back as status ``error`` with type, message and a traceback trimmed to the
snippet's frames; MemoryError as ``memory_limit``; an unencodable result as ``error`` or,
when too large, ``output_limit``.

In a session (``Task.session``) the names the body binds at its top level (assignments,
imports, ``def``, ``for`` targets: what the compiler makes the function's locals) are the
session's globals instead, declared ``global`` in the function, so the next call finds them;
``data`` stays each call's own. The host's SIGINT at a call's timeout raises
KeyboardInterrupt in the snippet while it runs (and only then): that call ends ``timeout``,
the session's state stays.
"""

from __future__ import annotations

import ast
import io
import mmap
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from types import CodeType
from typing import Any

from runtimes import codec, outcome, output
from runtimes.outcome import ErrorDetail, Status
from runtimes.protocol import Imports, Task
from runtimes.python import imports

FILENAME = "<snippet>"
_OWN_CODE = __file__.rsplit("/runtimes/", 1)[0] + "/runtimes/"
FUNCTION = "snippet"

# Imported once in the zygote, shared copy-on-write by every child: what snippets commonly use.
PRELOAD = (
    "base64", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "hashlib", "heapq", "itertools", "json", "math", "operator",
    "random", "re", "statistics", "string", "textwrap", "typing", "unicodedata",
)


# Snippets the host sends for every task of a kind (n8n's Python Code node: library/*.pysnippet),
# compiled once in the zygote: a task whose code is one of these texts runs its code object.
LIBRARY = os.path.join(os.path.dirname(__file__), "library")
_prepared: dict[str, Any] = {}


def prepare_library() -> None:
    for name in sorted(os.listdir(LIBRARY)) if os.path.isdir(LIBRARY) else ():
        if name.endswith(".pysnippet"):
            with open(os.path.join(LIBRARY, name), encoding="utf-8") as f:
                text = f.read()
            _prepared[text] = compile_snippet(text)


def preload(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Import what snippets commonly use, and the operator's ``extra`` modules (third-party
    packages, say); returns the extra ones that failed, with why."""
    imports.install_library_check()  # before anything imported can hold importlib's own
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass  # a module whose shared library the jail does not mount simply stays out
    failed = {}
    for name in extra:
        try:
            __import__(name)
        except Exception as exc:  # the operator's module: report it, never die of it
            failed[name] = f"{type(exc).__name__}: {exc}"
    prepare_library()
    try:  # asyncio without the socketpair a child may not make (runtimes/python/aio.py)
        from runtimes.python import aio

        aio.install()
    except ImportError:
        pass
    try:  # the restricted policy's compiler, warmed once: children inherit it ready
        from runtimes.python import restricted

        restricted.compile_snippet("x = [i for i in data]\nreturn x", FILENAME)
    except ImportError:
        pass
    return failed


def survey() -> None:
    """In the zygote, after ``preload``: find what a worker will watch, once, so that no
    worker pays for it (runtimes/python/leftovers.py). Not in pyodide's guest, which puts its
    interpreter back after each task instead."""
    from runtimes.python import leftovers

    leftovers.survey()


def arm() -> Callable[[], bool]:
    """Worker mode: this process is becoming a worker. Returns the check that the child runs
    after each of its tasks (runtimes/python/leftovers.py)."""
    from runtimes.python import leftovers

    return leftovers.arm()


def prepare_next() -> None:
    """Worker mode, between tasks: nothing left to do (every task gets fresh globals and
    builtins; the check that ``arm`` returned has run, and reseeded ``random``)."""


# A session's state: its globals (one namespace for all its calls), and whether the host's
# interrupt may end the running call now (only while the snippet itself runs).
_session: dict[str, Any] | None = None
_interruptible = False
_interrupted = False


def enter_session() -> None:
    """This process becomes a session: SIGINT (the host's interrupt at a call's timeout) ends
    the running call, and nothing else."""
    signal.signal(signal.SIGINT, _on_interrupt)


def _on_interrupt(signum: int, frame: Any) -> None:
    global _interrupted
    if _interruptible:  # past the snippet (encoding its result, say) it comes too late
        _interrupted = True
        raise KeyboardInterrupt


def compile_session(code: str) -> Any:
    """``compile_snippet``, with the names the function would keep local (its variables and
    cells, as the compiler found them) declared ``global``: a session's state."""
    plain = compile_snippet(code)
    inner = next(c for c in plain.co_consts if isinstance(c, CodeType))
    names = sorted({n for n in inner.co_varnames + inner.co_cellvars if n != "data"})
    if not names:
        return plain
    module = ast.parse(code, FILENAME)
    where = dict(lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)
    module.body.insert(0, ast.Global(names=names, **where))
    return compile_snippet_ast(module)


def rehearse() -> None:
    """Run a canned task end to end in a fresh child, before its real task (see ``child``)."""
    run(Task(
        code="return {'x': [data], 'b': b'', 'f': 1.5}",
        data=codec.encode({"k": [1, "v", b"", None]}),
        as_bytes=1, memory_bytes=1, cpu_s=1, stdout_bytes=1024, result_bytes=1024,
        imports=Imports(stdlib=("json",)),
    ))


class CappedOutput(io.TextIOBase):
    """A text stream that keeps the first ``cap`` bytes (UTF-8) and counts the rest, in an
    ``OutputBuffer`` (shared with the host when it handed a file in: see runtimes.output)."""

    def __init__(self, buffer: output.OutputBuffer, stream: int = output.STDOUT) -> None:
        self._buffer = buffer
        self._room = buffer.cap
        self._stream = stream

    @property
    def truncated(self) -> bool:
        return self._buffer.truncated

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self._room - self._buffer.size
        if room <= 0:
            if s:
                self._buffer.mark_truncated()
            return len(s)
        # slice before encoding, so a 50 MB print does not build a 50 MB bytes object
        data = s[:room].encode("utf-8", "replace")
        if len(s) > room:
            self._buffer.mark_truncated()
        self._buffer.write(data, self._stream)
        return len(s)

    def flush(self) -> None:
        self._buffer.flush()


def compile_snippet(code: str) -> Any:
    """Compile a function body into a code object for ``def snippet(data): <body>``."""
    return compile_snippet_ast(ast.parse(code, FILENAME))


def compile_snippet_ast(module: ast.Module) -> Any:
    body = module.body or [ast.Pass(lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)]
    func = ast.FunctionDef(
        name=FUNCTION,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg="data", lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)],
            kwonlyargs=[], kw_defaults=[],
            defaults=[], vararg=None, kwarg=None,
        ),
        body=body, decorator_list=[], returns=None, type_comment=None,
        lineno=1, col_offset=0, end_lineno=1, end_col_offset=0,
    )
    wrapper = ast.Module(body=[func], type_ignores=[])
    return compile(wrapper, FILENAME, "exec", dont_inherit=True)


def run(task: Task, shared: mmap.mmap | None = None) -> bytes:
    buffer = output.OutputBuffer(task.stdout_bytes, shared, separate=task.separate_stderr,
                                 streaming=task.stream)
    sys.stdout = CappedOutput(buffer, output.STDOUT)
    sys.stderr = CappedOutput(buffer, output.STDERR)
    # the task's stdin: text by default, its bytes as sys.stdin.buffer
    sys.stdin = io.TextIOWrapper(io.BytesIO(task.stdin), encoding="utf-8", errors="replace")
    started = time.perf_counter()

    def finish(status: Status, message: str, **extra: Any) -> bytes:
        buffer.flush()  # what a task that streams printed last, before its result
        stdout, stderr = buffer.streams()
        return outcome.encode(
            status, message, stdout=stdout, stderr=stderr, truncated=buffer.truncated,
            duration_ms=(time.perf_counter() - started) * 1000.0, **extra,
        )

    try:
        return _run(task, finish)
    finally:
        # what the executor itself changed, put back: a worker compares sys with its pristine
        # state after the task (runtimes/python/leftovers.py)
        sys.stdout, sys.stderr, sys.stdin = sys.__stdout__, sys.__stderr__, sys.__stdin__


def _run(task: Task, finish: Callable[..., bytes]) -> bytes:
    code, result_cap, allow = task.code, task.result_bytes, task.imports
    undo = None if allow.transitive else imports.check_library_imports(allow)
    try:
        return _execute(task, code, result_cap, allow, finish)
    finally:
        if undo is not None:
            undo()


def _execute(task: Task, code: str, result_cap: int, allow: Imports,
             finish: Callable[..., bytes]) -> bytes:
    try:
        data = codec.decode(task.data)
        if task.session:
            code_object = compile_session(code)
            namespace = _session_namespace(allow)
        elif task.policy == "restricted":
            from runtimes.python import restricted

            code_object = restricted.compile_snippet(code, FILENAME)
            namespace = restricted.namespace(imports.guard(allow))
        else:
            code_object = _prepared.get(code) or compile_snippet(code)
            namespace = {"__name__": "__snippet__",
                         "__builtins__": imports.snippet_builtins(allow)}
        exec(code_object, namespace)
        function = namespace.pop(FUNCTION) if task.session else namespace[FUNCTION]
        value = _call(function, data) if task.session else function(data)
        encoded = codec.encode(value, max_bytes=result_cap)
    except KeyboardInterrupt as exc:
        if not _interrupted:  # the snippet's own raise: an error like any other
            error = describe(exc, code)
            return finish(Status.ERROR, f"{error.type}: {error.message}", error=error)
        return finish(Status.TIMEOUT, f"interrupted at its wall-clock timeout of "
                                      f"{task.timeout_ms / 1000:g} s; the session's state is kept")
    except MemoryError:
        return finish(Status.MEMORY_LIMIT, outcome.out_of_memory(task.memory_bytes))
    except codec.ResultTooLarge as exc:
        return finish(Status.OUTPUT_LIMIT, str(exc))
    except codec.EncodeError as exc:
        error = ErrorDetail("UnserializableResult", str(exc), "")
        return finish(Status.ERROR, f"the result cannot be returned: {exc}", error=error)
    except BaseException as exc:  # the snippet's own failure, SystemExit included
        error = describe(exc, code)
        return finish(Status.ERROR, f"{error.type}: {error.message}", error=error)
    return finish(Status.OK, "ok", value=encoded)


def _session_namespace(allow: Imports) -> dict[str, Any]:
    """The session's globals, made at its first call; each call brings its own builtins (its
    import allow-list)."""
    global _session
    if _session is None:
        _session = {"__name__": "__session__"}
    _session["__builtins__"] = imports.snippet_builtins(allow)
    return _session


def _call(function: Callable[[Any], Any], data: Any) -> Any:
    """A session's snippet, interruptible while (and only while) it runs."""
    global _interruptible, _interrupted
    _interrupted = False
    _interruptible = True
    try:
        return function(data)
    finally:
        _interruptible = False


# An error's message and traceback come back whole up to this many characters each: the
# snippet chooses the text it raises with, and its error must still fit its envelope.
MAX_ERROR_CHARS = 64 * 1024
# what a class's own name, qualified name and module are, read from the class itself: a
# metaclass's property of the same name (the snippet's code) is not called
_NAME, _QUALNAME, _MODULE = (type.__dict__[n] for n in ("__name__", "__qualname__", "__module__"))


def describe(exc: BaseException, code: str = "") -> ErrorDetail:
    """Type, message and a traceback that starts at the snippet's first frame. The snippet's
    lines come from ``code``, not from ``linecache``: a worker must not leave them there.
    Whatever the exception gives is the snippet's code (its ``__str__``, a ``__traceback__``
    property, a metaclass's attributes), so nothing raised here escapes: at worst the error
    comes back with its type's name and its message alone."""
    kind = type(exc)
    name: str = _NAME.__get__(kind)
    message = _clip(_message(exc))
    try:
        text = _clip(_traceback(exc, kind, message, code))
    except BaseException:  # noqa: BLE001 - the snippet's code, whatever it raised
        text = f"{name}: {message}\n"
    return ErrorDetail(name, message, text)


def _traceback(exc: BaseException, kind: type, message: str, code: str) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    formatted = traceback.TracebackException(kind, exc, tb, compact=True, lookup_lines=False)
    formatted._str = message  # type: ignore[attr-defined]  # its message, as clipped
    lines = code.splitlines()
    # the sandbox's own frames (the import guard, say) are not the snippet's business
    formatted.stack = traceback.StackSummary.from_list(
        [_with_line(f, lines) for f in formatted.stack if not f.filename.startswith(_OWN_CODE)])
    text = "".join(formatted.format())
    module, qualname = _MODULE.__get__(kind), _QUALNAME.__get__(kind)
    if isinstance(module, str) and module.startswith("runtimes."):  # ours: by bare names
        text = text.replace(f"{module}.{qualname}", qualname)
    return text


def _clip(text: str) -> str:
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return f"{text[:MAX_ERROR_CHARS]}... ({len(text) - MAX_ERROR_CHARS} more characters)"


def _message(exc: BaseException) -> str:
    """The exception's message. It is the snippet's code that makes it (its ``__str__``, a
    SyntaxError's ``msg``), so whatever that raises is said, as CPython's own traceback says
    it, and never escapes: the snippet's error stays an error."""
    try:
        if isinstance(exc, SyntaxError):
            return f"{exc.msg} (line {exc.lineno})"
        message = str(exc)
    except BaseException:  # noqa: BLE001 - the snippet's __str__, whatever it raised
        return "<exception str() failed>"
    return message


def _with_line(frame: traceback.FrameSummary, lines: list[str]) -> traceback.FrameSummary:
    if frame.filename != FILENAME:
        return frame
    line = lines[frame.lineno - 1] if frame.lineno and 0 < frame.lineno <= len(lines) else ""
    return traceback.FrameSummary(frame.filename, frame.lineno, frame.name, lookup_line=False,
                                  line=line, end_lineno=frame.end_lineno, colno=frame.colno,
                                  end_colno=frame.end_colno)
