"""``policy="restricted"``: the snippet compiled with RestrictedPython and run in the jail.

RestrictedPython rewrites the code so that attribute access, item access, iteration and
writes go through guards, refuses names that start with ``_`` (so ``__class__``,
``__subclasses__``, ``__globals__`` and the like cannot be spelled), and runs it with a
small set of safe builtins. The compile happens in the child, per task (RestrictedPython's
compiler is pure Python: about half a millisecond for 20 lines). What it refuses, that
plain Python allows: any name or attribute starting with ``_`` (dunder methods, private
attributes, ``_`` as a throwaway variable), ``exec``/``eval``/``compile``/``open``,
``getattr``-style introspection beyond public attributes, writing attributes of objects
that are not plain containers, ``global``-free augmented assignment to attributes
(``obj.x += 1``), and class definitions that rely on ``__init__`` and friends.
"""

from __future__ import annotations

import ast
import operator
import sys
from collections.abc import Callable
from types import CodeType
from typing import Any

from RestrictedPython.compile import compile_restricted_function
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Limits import limited_builtins
from RestrictedPython.Guards import (
    safe_builtins,
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

FUNCTION = "snippet"

_EXTRA_BUILTINS = (
    "all", "any", "bytearray", "bytes", "dict", "enumerate", "filter", "frozenset", "iter",
    "list", "map", "max", "min", "next", "reversed", "set", "sorted", "sum", "zip",
)

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "^=": operator.ixor, "|=": operator.ior, "@=": operator.imatmul,
}


class RestrictedCodeError(Exception):
    """The snippet uses something RestrictedPython refuses to compile."""


def compile_snippet(code: str, filename: str) -> CodeType:
    # a plain parse first: code that is not Python at all fails as the SyntaxError it is,
    # with its line, rather than as a refusal of the restricted compiler
    ast.parse(code, filename)
    result = compile_restricted_function("data", code, FUNCTION, filename=filename)
    if result.errors or result.code is None:
        raise RestrictedCodeError("; ".join(result.errors))
    return result.code


class _Printer:
    """RestrictedPython's ``print`` hook: straight to the task's captured output."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.pop("file", None)
        print(*objects, file=sys.stdout, **kwargs)


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    fn = _INPLACE.get(op)
    if fn is None:
        raise SyntaxError(f"unsupported in-place operator {op!r}")
    return fn(x, y)


def namespace(guarded_import: Callable[..., Any]) -> dict[str, Any]:
    """The globals a restricted snippet runs in."""
    import builtins

    allowed = dict(safe_builtins)
    allowed.update(limited_builtins)
    allowed.update({name: getattr(builtins, name) for name in _EXTRA_BUILTINS})
    allowed["__import__"] = guarded_import
    return {
        "__builtins__": allowed,
        "__name__": "__snippet__",
        "__metaclass__": type,
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_print_": _Printer,
        "_inplacevar_": _inplacevar,
    }
