"""What a JavaScript zygote prepares ahead of its children (runtimes/javascript/executor.py's
``preload``), run in-process on the engine (no jail): a library module named by the pools is
compiled into the pristine context every child inherits, so no task compiles it."""

from __future__ import annotations

import pytest

from runtimes.javascript import executor
from sandbox.n8n.backend import ZYGOTE_PRELOAD


@pytest.fixture
def zygote(monkeypatch):
    """The executor's process-wide state, restored after the test."""
    monkeypatch.setattr(executor, "_pristine", None)
    monkeypatch.setattr(executor, "_preloaded", ())
    return executor


def _functions(ctx) -> int:
    return ctx.memory()["js_func_count"]


def test_the_n8n_runners_zygote_compiles_the_code_node_api_before_any_task(zygote):
    assert zygote.preload(ZYGOTE_PRELOAD["javascript"]) == {}
    ctx = zygote._pristine
    before = _functions(ctx)
    ctx.eval("typeof __n8nRun")  # what the first line of every n8n task reaches for
    assert _functions(ctx) == before  # nothing left to compile


def test_without_the_preload_the_first_use_compiles_it(zygote):
    """The control of the test above: the count sees a compilation when there is one."""
    assert zygote.preload(()) == {}
    ctx = zygote._pristine
    before = _functions(ctx)
    ctx.eval("typeof __n8nRun")
    assert _functions(ctx) > before


def test_a_workers_next_context_is_prepared_as_the_zygotes_was(zygote):
    zygote.preload(("n8n",))
    zygote.prepare_next()
    ctx = zygote._pristine
    before = _functions(ctx)
    ctx.eval("typeof __n8nRun")
    assert _functions(ctx) == before


def test_a_name_that_is_no_library_module_is_reported_not_loaded(zygote):
    assert zygote.preload(("n8n", "fs")) == {"fs": "not a library module of the javascript runtime"}
