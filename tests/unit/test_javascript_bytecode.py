"""Our own JavaScript as bytecode (runtimes/javascript/bytecode.py), in-process on the engine
(no jail): a context made from the compiled scripts is the context made from source."""

from __future__ import annotations

import _quickjs
import pytest
import quickjs

from runtimes.javascript import bytecode, executor


@pytest.fixture
def zygote(monkeypatch):
    """The executor's process-wide state, restored after the test."""
    monkeypatch.setattr(executor, "_pristine", None)
    monkeypatch.setattr(executor, "_preloaded", ())
    return executor


@pytest.fixture
def loader() -> bytecode.Loader:
    opened = bytecode.Loader.open(_quickjs.Context, quickjs.Context, _quickjs.__file__)
    assert opened is not None
    return opened


def test_the_pinned_binding_is_read_as_bytecode():
    """The executor's fast path is in use with the binding pyproject.toml pins: a release that
    moved the fields of its context object fails here, not in a slower worker."""
    assert isinstance(executor._loader(), bytecode.Loader)


class _OtherLayout:
    """An object as large as the binding's context whose fields are something else."""

    __slots__ = ("a", "b", "c", "d", "e", "f", "g", "h")

    def set_time_limit(self, seconds: float) -> None:
        self.c = seconds


def test_a_binding_with_another_layout_is_not_read():
    assert _OtherLayout.__basicsize__ == 80  # the binding's size: only the fields differ
    assert bytecode.Loader.open(_OtherLayout, _OtherLayout, _quickjs.__file__) is None


def test_a_binding_of_another_size_is_not_read():
    assert bytecode.Loader.open(int, int, _quickjs.__file__) is None


_PROBES = (
    "typeof __sandbox.preload",  # gone before any snippet: its factory would reach our helpers
    "Object.isFrozen(__sandbox)",
    "Buffer.from('hi').toString('hex') + new URL('http://a/b?c=1').search",
    "typeof __n8nRun",
    "(() => { try { Buffer.from({}) } catch (e) { return e.stack } })()",
    "Math.random.toString()",
    "JSON.stringify(Object.getOwnPropertyNames(globalThis).sort())",
)


@pytest.mark.parametrize("preloaded", [(), ("n8n",)])
def test_a_context_from_bytecode_is_the_context_from_source(zygote, monkeypatch, preloaded):
    zygote.preload(preloaded)
    compiled = [zygote._new_context().eval(p) for p in _PROBES]
    monkeypatch.setattr(executor, "_loader", lambda: None)
    from_source = [zygote._new_context().eval(p) for p in _PROBES]
    assert compiled == from_source
    assert compiled[0] == "undefined"


def test_a_script_that_calls_the_host_while_it_loads_gets_its_answer(loader):
    ctx = quickjs.Context()
    ctx.add_callable("host", lambda x: x * 2)
    loader.run(ctx, loader.compile(quickjs.Context(), "globalThis.got = host(21);"))
    assert ctx.eval("got") == 42
    assert ctx.eval("host(2)") == 4  # the binding's own calls find the thread state it left


def test_a_script_that_throws_while_it_loads_is_an_error_naming_it(loader):
    ctx = quickjs.Context()
    with pytest.raises(RuntimeError, match="our own script failed: Error: boom"):
        loader.run(ctx, loader.compile(quickjs.Context(), "throw new Error('boom')"))


def test_source_that_does_not_compile_is_an_error_naming_it(loader):
    with pytest.raises(RuntimeError, match="did not compile: SyntaxError"):
        loader.compile(quickjs.Context(), "1 +")
