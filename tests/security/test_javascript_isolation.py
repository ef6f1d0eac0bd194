"""Each test names a capability the JavaScript sandbox denies and asserts the exact outcome."""

from __future__ import annotations

import pytest

from sandbox import Status

# every test runs as tasks and as session calls (tests/security/conftest.py)
SESSIONS_TOO = True


def past_timeout(through: str) -> Status:
    """A call past its timeout: a task's child is killed (timeout); a JavaScript session's
    call cannot be interrupted, so its process is killed and the session with it."""
    return Status.TIMEOUT if through == "task" else Status.SESSION_LOST


def js(sandbox, code, **limits):
    return sandbox.run("javascript", code, **limits)


def test_cant_reach_std_os_or_host_globals(sandbox):
    r = js(sandbox, "return [typeof std, typeof os, typeof print, typeof scriptArgs, typeof require]")
    assert r.status is Status.OK
    assert r.value == ["undefined"] * 5


def test_cant_import_modules(sandbox):
    for name in ("os", "std", "/etc/passwd", "./x.js"):
        r = js(sandbox, f"await import({name!r}); return 'imported'")
        assert r.status is Status.ERROR, name
        assert r.error.type in ("ReferenceError", "SyntaxError", "TypeError"), r.error


def test_cant_outlive_timeout_in_a_loop(sandbox, through):
    r = js(sandbox, "while (true) {}", timeout_s=1)
    assert r.status is past_timeout(through)


def test_cant_outlive_timeout_with_a_catastrophic_regex(sandbox, through):
    # a built-in the engine's interrupt cannot stop: the outside SIGKILL does
    r = js(sandbox, "return /(a+)+$/.test('a'.repeat(30) + 'b')", timeout_s=0.5)
    assert r.status is past_timeout(through)
    assert r.duration_ms < 3000


def test_cant_grow_arrays_beyond_memory_limit(sandbox):
    r = js(sandbox, "const a = []; while (true) a.push({i: a.length})", memory_mb=32)
    assert r.status is Status.MEMORY_LIMIT


def test_cant_grow_strings_beyond_memory_limit(sandbox):
    # distinct flat strings: doubling one string only builds a rope and hits the length cap
    r = js(sandbox, "const keep = []; for (let i = 0; ; i++) keep.push('y'.repeat(1 << 16) + i)",
           memory_mb=32)
    assert r.status is Status.MEMORY_LIMIT


def test_cant_allocate_huge_array_buffers(sandbox):
    r = js(sandbox, "return new ArrayBuffer(1024 * 1024 * 1024).byteLength", memory_mb=64)
    assert r.status is Status.MEMORY_LIMIT


def test_cant_leak_state_to_next_task(sandbox):
    first = js(sandbox, """
        Object.prototype.polluted = 'yes';
        Array.prototype.extra = 1;
        globalThis.leaked = 42;
        console.log = () => {};
        return 'polluted'""")
    assert first.value == "polluted"
    second = js(sandbox, """
        console.log('still mine');
        return [({}).polluted === undefined, typeof leaked, [].extra === undefined]""")
    assert second.status is Status.OK
    assert second.value == [True, "undefined", True]
    assert second.stdout == "still mine\n"


# A snippet that poisons the prototypes the result envelope would inherit from, then throws or
# returns: its own outcome still comes back (runtimes/javascript/executor.py builds the report
# from objects without a prototype, and from intrinsics captured before the snippet ran).
POISONS = {
    "an Object.prototype toJSON": "Object.prototype.toJSON = function () { return 'forged' };",
    "an Array.prototype toJSON": "Array.prototype.toJSON = function () { return 'forged' };",
    "getters and setters on the report's names": """
        for (const name of ['error', 'value', 'type', 'message', 'stack', 'unserializable', 'oom'])
          Object.defineProperty(Object.prototype, name,
                                {__proto__: null, get() { return 'forged' }, set(v) {}});""",
    "an indexed setter on Array.prototype": """
        Object.defineProperty(Array.prototype, '0', {get() { return 'forged' }, set(v) {}});""",
    "the sandbox's own methods replaced": """
        try { __sandbox.finish = () => 'forged'; } catch (e) {}
        try { __sandbox.started = () => 'forged'; } catch (e) {}""",
}


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_cant_turn_a_thrown_error_into_a_crash_by_poisoning_prototypes(sandbox, poison):
    r = js(sandbox, poison + "\nthrow new RangeError('mine')")
    assert (r.status, r.message) == (Status.ERROR, "RangeError: mine")


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_cant_forge_its_returned_value_by_poisoning_prototypes(sandbox, poison):
    r = js(sandbox, poison + "\nreturn {a: [1, {b: 'x'}], n: 2n ** 70n}")
    assert (r.status, r.value) == (Status.OK, {"a": [1, {"b": "x"}], "n": 2**70})


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_cant_turn_an_asynchronous_throw_into_a_crash_by_poisoning_prototypes(sandbox, poison):
    r = js(sandbox, poison + "\nawait null; throw new TypeError('later')")
    assert (r.status, r.message) == (Status.ERROR, "TypeError: later")
