"""Our own JavaScript compiled once and loaded into each new context as QuickJS bytecode.

A context starts from the prelude, globals.js and whatever library module the pools preload
(the n8n Code node API): about 60 KB of our own source. The binding (``quickjs-ng`` on PyPI)
compiles every ``eval`` from source and offers no call for bytecode, so a worker paid that
compile for every task's fresh context (1-3 ms). The engine it links exports its C API,
``JS_WriteObject``/``JS_ReadObject``/``JS_EvalFunction`` among it: this module calls those
through ctypes on the binding's own shared library, so each script is compiled once per
process (in the zygote, before any snippet) and each context reads the compiled form.

What is ever compiled here is our own source, in our process; a snippet's code never becomes
bytecode here, and no bytecode comes from outside the process (QuickJS does not verify the
bytecode it reads, so it must never read any other).

The binding's context object is read as its C struct (``RuntimeData`` of its module.c):
the runtime and context pointers, and the saved thread state the binding's callbacks into
Python restore. ``Loader.open`` checks that layout on a probe context, without following a
pointer until the fields it can see without one have matched, and gives None for a binding
whose layout differs: the executor then compiles source, as before, only slower.
"""

from __future__ import annotations

import ctypes
from typing import Any

# RuntimeData of the binding (quickjs-ng 0.17): PyObject_HEAD, then these, by offset
_SIZE = 80
_RUNTIME, _CONTEXT, _HAS_TIME_LIMIT, _TIME_LIMIT, _THREAD_STATE = 16, 24, 32, 40, 48

_COMPILE_ONLY = 1 << 5  # JS_EVAL_FLAG_COMPILE_ONLY (quickjs.h)
_OBJ_BYTECODE = 1 << 0  # JS_WRITE_OBJ_BYTECODE, JS_READ_OBJ_BYTECODE
_TAG_EXCEPTION = 6
_TAG_FUNCTION_BYTECODE = -2
_FILENAME = b"<input>"  # the name the binding's eval gives every script: stacks read alike


class _Value(ctypes.Structure):
    """A JSValue as the engine passes it on x86-64 and arm64 (not NaN-boxed): two words."""

    _fields_ = [("u", ctypes.c_int64), ("tag", ctypes.c_int64)]


class Loader:
    """The engine's C API, on the binding's context objects."""

    def __init__(self, path: str) -> None:
        held = ctypes.PyDLL(path)  # calls that keep the GIL: nothing in them runs Python
        released = ctypes.CDLL(path)  # JS_EvalFunction: the binding's own way to run code
        ptr, size, val = ctypes.c_void_p, ctypes.c_size_t, _Value
        self._get_runtime = _fn(held.JS_GetRuntime, ptr, ptr)
        self._eval = _fn(held.JS_Eval, val, ptr, ctypes.c_char_p, size, ctypes.c_char_p,
                         ctypes.c_int)
        self._write = _fn(held.JS_WriteObject, ptr, ptr, ctypes.POINTER(size), val, ctypes.c_int)
        self._read = _fn(held.JS_ReadObject, val, ptr, ctypes.c_char_p, size, ctypes.c_int)
        self._free_value = _fn(held.JS_FreeValue, None, ptr, val)
        self._free = _fn(held.js_free, None, ptr, ptr)
        self._exception = _fn(held.JS_GetException, val, ptr)
        self._to_text = _fn(held.JS_ToCStringLen2, ptr, ptr, ctypes.POINTER(size), val,
                            ctypes.c_int)
        self._free_text = _fn(held.JS_FreeCString, None, ptr, ptr)
        self._stack_top = _fn(held.JS_UpdateStackTop, None, ptr)
        self._run_gc = _fn(held.JS_RunGC, None, ptr)
        self._evaluate = _fn(released.JS_EvalFunction, val, ptr, val)
        self._thread_state = _fn(ctypes.pythonapi.PyThreadState_Get, ptr)

    @classmethod
    def open(cls, context_type: Any, make: Any, path: str) -> Loader | None:
        """A loader for the binding at ``path`` whose contexts ``make()`` returns (instances of
        ``context_type``), or None when their layout is not the one this module reads."""
        if getattr(context_type, "__basicsize__", None) != _SIZE:
            return None
        probe = make()
        probe.set_time_limit(7.0)  # the binding stores 1 and 7 s in clock ticks
        ticks = 7 * 1_000_000  # CLOCKS_PER_SEC is 10^6 wherever the binding is built (POSIX)
        base = id(probe)
        if (ctypes.c_int.from_address(base + _HAS_TIME_LIMIT).value != 1
                or ctypes.c_long.from_address(base + _TIME_LIMIT).value != ticks
                or ctypes.c_void_p.from_address(base + _THREAD_STATE).value is not None):
            return None
        loader = cls(path)
        runtime, context = loader._pointers(probe)
        if not runtime or not context or loader._get_runtime(context) != runtime:
            return None
        return loader

    def _pointers(self, ctx: Any) -> tuple[int, int]:
        base = id(ctx)
        return (ctypes.c_void_p.from_address(base + _RUNTIME).value or 0,
                ctypes.c_void_p.from_address(base + _CONTEXT).value or 0)

    def compile(self, ctx: Any, source: str) -> bytes:
        """``source`` compiled as a global script in ``ctx`` (not run), as bytecode."""
        _, context = self._pointers(ctx)
        text = source.encode("utf-8")
        function = self._eval(context, text, len(text), _FILENAME, _COMPILE_ONLY)
        if function.tag != _TAG_FUNCTION_BYTECODE:
            raise RuntimeError(f"our own script did not compile: {self._take_error(context)}")
        size = ctypes.c_size_t()
        data = self._write(context, ctypes.byref(size), function, _OBJ_BYTECODE)
        self._free_value(context, function)
        if not data:
            raise RuntimeError("the engine could not write our own script's bytecode")
        try:
            return ctypes.string_at(data, size.value)
        finally:
            self._free(context, data)

    def run(self, ctx: Any, code: bytes) -> None:
        """Run a script ``compile`` made, in ``ctx``, as the binding's ``eval`` would: the GIL
        released and the thread state where the binding's calls into Python look for it."""
        runtime, context = self._pointers(ctx)
        function = self._read(context, code, len(code), _OBJ_BYTECODE)
        if function.tag == _TAG_EXCEPTION:
            raise RuntimeError(f"our own bytecode did not load: {self._take_error(context)}")
        saved = ctypes.c_void_p.from_address(id(ctx) + _THREAD_STATE)
        self._stack_top(runtime)
        saved.value = self._thread_state()
        try:
            value = self._evaluate(context, function)  # frees the function
        finally:
            saved.value = None
        if value.tag == _TAG_EXCEPTION:
            raise RuntimeError(f"our own script failed: {self._take_error(context)}")
        self._free_value(context, value)

    def collect(self, ctx: Any) -> None:
        """The engine's cycle collection alone (the binding's ``gc`` runs Python's full
        collection first, which costs a worker more than the engine's does)."""
        self._run_gc(self._pointers(ctx)[0])

    def _take_error(self, context: int) -> str:
        error = self._exception(context)
        size = ctypes.c_size_t()
        text = self._to_text(context, ctypes.byref(size), error, 0)
        message = ctypes.string_at(text, size.value).decode("utf-8", "replace") if text else "?"
        if text:
            self._free_text(context, text)
        self._free_value(context, error)
        return message


def _fn(function: Any, result: Any, *arguments: Any) -> Any:
    function.restype = result
    function.argtypes = list(arguments)
    return function
