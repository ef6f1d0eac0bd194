"""Sessions through the local API, in real jails: state across calls, the interrupt at a
call's timeout, the session's own memory cap, its idle timeout and lifetime, close, and a
session lost with its process or jail (never a silent new one)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sandbox import PoolConfig, Sandbox, SessionError, Status


@pytest.fixture(scope="module")
def sb():
    with Sandbox(PoolConfig(size=2, max_sessions=4, session_interrupt_grace_s=1.0,
                            stdlib_allow=("*",))) as box:
        yield box


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_globals_imports_and_functions_live_across_calls(sb):
    with sb.session("python") as s:
        assert s.run("import json\nx = 41\ndef bump(n):\n    return n + 1").status is Status.OK
        r = s.run("x = bump(x)\nreturn json.dumps({'x': x})")
        assert (r.status, r.value) == (Status.OK, '{"x": 42}')


def test_data_is_each_calls_own(sb):
    with sb.session("python") as s:
        s.run("seen = data")
        assert s.run("return [seen, data]", data=2).value == [None, 2]


def test_an_error_keeps_the_session(sb):
    with sb.session("python") as s:
        s.run("x = 1")
        assert s.run("raise ValueError('no')").status is Status.ERROR
        assert s.run("return x").value == 1


def test_a_call_past_its_timeout_is_interrupted_and_the_state_kept(sb):
    with sb.session("python") as s:
        s.run("x = 'kept'")
        r = s.run("import time\ntime.sleep(30)", timeout_s=0.3)
        assert (r.status, r.message) == (Status.TIMEOUT, "interrupted at its wall-clock timeout "
                                                         "of 0.3 s; the session's state is kept")
        assert s.run("return x").value == "kept"


def test_a_call_that_ignores_the_interrupt_is_killed_and_the_session_lost(sb, request):
    s = sb.session("python")
    request.addfinalizer(s.close)
    code = ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n    pass")
    r = s.run(code, timeout_s=0.3)
    assert r.status is Status.SESSION_LOST
    assert r.message.endswith("its call ignored the interrupt at its timeout of 0.3 s "
                              "(killed 1 s later)")
    r = s.run("return 1")
    assert r.status is Status.SESSION_LOST  # never a new empty session in its place
    assert "ended: its call ignored the interrupt" in r.message


def test_the_session_memory_cap_holds_across_calls(sb):
    with sb.session("python", memory_mb=64) as s:
        s.run("keep = []")
        r = s.run("keep.append(bytearray(40 * 1024 * 1024))\n"
                  "keep.append(bytearray(40 * 1024 * 1024))")
        assert r.status is Status.MEMORY_LIMIT
        assert s.run("return len(keep)").value == 1  # the process lives on


def test_a_named_session_is_attached_to_and_an_unknown_name_creates_it(sb):
    first = sb.session("python", "notebook-1")
    try:
        first.run("x = 7")
        again = sb.session("python", "notebook-1")
        assert again.run("return x").value == 7
    finally:
        first.close()


def test_two_sessions_do_not_see_each_other(sb):
    with sb.session("python") as a, sb.session("python") as b:
        a.run("import builtins\nsecret = 'a'\nbuiltins.LEAK = 'a'")
        r = b.run("import builtins\nreturn [globals().get('secret'), hasattr(builtins, 'LEAK')]")
        assert r.value == [None, False]


def test_a_closed_session_is_lost_and_its_process_gone(sb, request):
    s = sb.session("python")
    request.addfinalizer(s.close)
    pid = s.run("import os\nreturn os.getpid()").value
    children = sb.snapshot()["python"]["children"]
    host_pid = children[pid][1]
    s.close()
    assert _wait(lambda: not _alive(host_pid))
    r = s.run("return 1")
    assert (r.status, r.message) == (Status.SESSION_LOST, f"session {s.id!r} ended: it was closed")


def test_its_process_killed_from_outside_loses_the_session(sb, request):
    s = sb.session("python")
    request.addfinalizer(s.close)
    pid = s.run("import os\nreturn os.getpid()").value
    os.kill(sb.snapshot()["python"]["children"][pid][1], signal.SIGKILL)
    assert _wait(lambda: s.run("return 1").status is Status.SESSION_LOST)


def test_an_idle_session_ends_after_its_idle_timeout(sb, request):
    open_before = sb.session_count()
    s = sb.session("python", idle_timeout_s=0.3)
    request.addfinalizer(s.close)
    s.run("x = 1")
    assert _wait(lambda: sb.session_count() == open_before)  # a call would keep it in use
    r = s.run("return x")
    assert (r.status, r.message) == (Status.SESSION_LOST,
                                     f"session {s.id!r} ended: it was idle for 0.3 s")


def test_a_session_ends_at_its_lifetime(sb, request):
    s = sb.session("python", max_lifetime_s=0.5)
    request.addfinalizer(s.close)
    assert _wait(lambda: s.run("return 1").status is Status.SESSION_LOST)
    assert "it reached its lifetime of 0.5 s" in s.run("return 1").message


def test_sessions_beyond_the_cap_are_refused_naming_it():
    with Sandbox(PoolConfig(size=1, max_sessions=1)) as box:
        box.session("python")
        with pytest.raises(SessionError, match=r"1 python sessions are open, the most allowed "
                                               r"\(max_sessions\)"):
            box.session("python")


def test_a_session_is_taken_from_the_pool_without_a_fork():
    with Sandbox(PoolConfig(size=2, stdlib_allow=("*",))) as box:
        assert _wait(lambda: box.idle_children() == 2)
        before = set(box.snapshot()["python"]["children"])
        s = box.session("python")
        pid = s.run("import os\nreturn os.getpid()").value
        assert pid in before  # a child forked ahead of demand, not one made for it


def test_a_jail_death_loses_every_session():
    with Sandbox(PoolConfig(size=1)) as box:
        s = box.session("python")
        s.run("x = 1")
        os.kill(box.snapshot()["python"]["jail_pid"], signal.SIGKILL)
        assert _wait(lambda: s.run("return x").status is Status.SESSION_LOST)
        assert "jail died" in s.run("return x").message


def test_pyodide_has_no_sessions(sb):
    with pytest.raises(SessionError, match="sessions are not available for pyodide"):
        sb.session("pyodide")


# -- JavaScript: one context for the session's calls --------------------------------------------


@pytest.fixture(scope="module")
def jsb():
    with Sandbox(PoolConfig(size=1), runtimes=("javascript",)) as box:
        yield box


def test_a_javascript_session_keeps_its_globals(jsb):
    with jsb.session("javascript") as s:
        assert s.run("globalThis.n = 41; counter = 1").status is Status.OK
        r = s.run("n += counter; console.log('n is', n); return n")
        assert (r.status, r.value, r.stdout) == (Status.OK, 42, "n is 42\n")


def test_a_javascript_session_does_not_see_another(jsb):
    with jsb.session("javascript") as a, jsb.session("javascript") as b:
        a.run("globalThis.secret = 1; Object.prototype.polluted = true")
        r = b.run("return [typeof secret, ({}).polluted === undefined]")
        assert r.value == ["undefined", True]


def test_a_javascript_call_past_its_timeout_ends_its_session(jsb):
    s = jsb.session("javascript")
    r = s.run("while (true) {}", timeout_s=0.3)
    assert (r.status, r.message) == (Status.SESSION_LOST, (
        f"session {s.id!r} is lost: its call passed its timeout of 0.3 s, and a javascript "
        "call cannot be interrupted: its process was killed"))
    s.close()
