"""The per-child BPF program, run through a small classic-BPF interpreter (no kernel)."""

from __future__ import annotations

import struct

import pytest

import seccomp
from seccomp import bpf, policy
from runtimes.seccomp_filter import patch_pid
from seccomp.syscalls import AUDIT_ARCH_X86_64, X86_64

AUDIT_ARCH_I386 = 0x40000003


def evaluate(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    """Interpret a seccomp program for one syscall; return its action."""
    padded = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *padded)
    insns = [bpf.INSTRUCTION.unpack_from(program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == bpf.LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == bpf.JEQ_K:
            pc += 1 + (jt if acc == k else jf)
        elif code == bpf.JGE_K:
            pc += 1 + (jt if acc >= k else jf)
        elif code == bpf.JSET_K:
            pc += 1 + (jt if acc & k else jf)
        elif code == bpf.RET_K:
            return k
        else:  # pragma: no cover - the compiler emits nothing else
            raise AssertionError(f"unknown opcode {code:#x}")


PID = 4242


@pytest.fixture(scope="module")
def program() -> bytes:
    f = seccomp.child_filter()
    return patch_pid(f.program, f.pid_slots, PID)


@pytest.mark.parametrize("name", sorted(policy.CHILD_KILL))
def test_kill_list_kills(program: bytes, name: str) -> None:
    assert evaluate(program, X86_64[name]) == bpf.RET_KILL_PROCESS


@pytest.mark.parametrize("name", ["read", "write", "mmap", "openat", "exit_group", "getpid"])
def test_ordinary_calls_pass_to_the_jail_filter(program: bytes, name: str) -> None:
    assert evaluate(program, X86_64[name]) == bpf.RET_ALLOW


@pytest.mark.parametrize("name", ["kill", "tkill", "tgkill"])
def test_signals_only_to_itself(program: bytes, name: str) -> None:
    nr = X86_64[name]
    assert evaluate(program, nr, (PID, 9)) == bpf.RET_ALLOW
    assert evaluate(program, nr, (1, 9)) == bpf.RET_KILL_PROCESS
    assert evaluate(program, nr, (0, 9)) == bpf.RET_KILL_PROCESS  # the process group
    assert evaluate(program, nr, ((1 << 64) - 1, 9)) == bpf.RET_KILL_PROCESS  # -1: everyone
    assert evaluate(program, nr, ((1 << 32) | PID, 9)) == bpf.RET_KILL_PROCESS


def test_clone_only_for_threads(program: bytes) -> None:
    nr = X86_64["clone"]
    assert evaluate(program, nr, (0x11,)) == bpf.RET_KILL_PROCESS  # fork: SIGCHLD only
    assert evaluate(program, nr, (0x3D0F00,)) == bpf.RET_ALLOW  # pthread_create's flags


def test_clone3_fails_with_enosys_so_libc_falls_back_to_clone(program: bytes) -> None:
    assert evaluate(program, X86_64["clone3"]) == bpf.RET_ERRNO | 38


def test_other_architectures_are_killed(program: bytes) -> None:
    assert evaluate(program, 3, arch=AUDIT_ARCH_I386) == bpf.RET_KILL_PROCESS


def test_x32_syscalls_are_killed(program: bytes) -> None:
    assert evaluate(program, X86_64["read"] | 0x40000000) == bpf.RET_KILL_PROCESS


def test_unpatched_program_allows_no_kill() -> None:
    f = seccomp.child_filter()
    assert evaluate(f.program, X86_64["kill"], (PID, 9)) == bpf.RET_KILL_PROCESS


def test_policy_names_are_known_syscalls() -> None:
    names = (policy.JAIL_ALLOW | policy.JAIL_ENOSYS | policy.CHILD_KILL | policy.CHILD_SELF_ONLY
             | policy.CHILD_EPERM)
    assert names <= set(X86_64)


def test_child_denies_what_the_jail_allows_for_the_zygote() -> None:
    zygote_only = {"fork", "vfork", "execve", "pidfd_open"}
    assert zygote_only <= policy.JAIL_ALLOW
    assert zygote_only <= policy.CHILD_KILL
    assert "socketpair" in policy.JAIL_ALLOW and "socketpair" in policy.CHILD_EPERM


@pytest.mark.parametrize("name", sorted(policy.CHILD_EPERM))
def test_creating_a_socket_fails_with_eperm_so_library_probes_fall_back(program: bytes, name) -> None:
    assert evaluate(program, X86_64[name]) == bpf.RET_ERRNO | 1


def test_jail_policy_denies_by_default() -> None:
    text = seccomp.jail_policy()
    assert text.endswith("USE jail DEFAULT ERRNO(1)")
    assert "newstat" in text and " stat," not in text
    for name in ("ptrace", "mount", "bpf", "socket", "connect", "unshare"):
        assert f" {name}," not in text and f" {name} " not in text


def test_every_number_gets_the_verdict_its_rule_gives(program: bytes) -> None:
    """The binary search against the rules read one by one, for every number up to 1024."""
    verdicts = {}
    for name in policy.CHILD_KILL:
        verdicts[X86_64[name]] = bpf.RET_KILL_PROCESS
    for name in policy.CHILD_ENOSYS:
        verdicts[X86_64[name]] = bpf.RET_ERRNO | 38
    for name in policy.CHILD_EPERM:
        verdicts[X86_64[name]] = bpf.RET_ERRNO | 1
    for nr in range(1024):
        args = (0x11,) if nr == X86_64["clone"] else (1, 9)  # fork's flags; another's pid
        expected = verdicts.get(nr, bpf.RET_ALLOW)
        if nr in {X86_64[n] for n in policy.CHILD_SELF_ONLY | policy.CHILD_THREADS_ONLY}:
            expected = bpf.RET_KILL_PROCESS
        assert evaluate(program, nr, args) == expected, nr


# -- the pyodide worker's program: the child's with Node.js's differences --------------------

RET_ENOSYS = bpf.RET_ERRNO | 38


@pytest.fixture(scope="module")
def worker() -> bytes:
    f = seccomp.worker_filter()
    return patch_pid(f.program, f.pid_slots, PID)


@pytest.fixture(scope="module")
def child() -> bytes:
    f = seccomp.child_filter()
    return patch_pid(f.program, f.pid_slots, PID)


@pytest.mark.parametrize("name", ["execve", "execveat"])
def test_exec_goes_to_the_supervisor(worker: bytes, name: str) -> None:
    assert evaluate(worker, X86_64[name]) == bpf.RET_USER_NOTIF


def test_io_uring_setup_fails_with_enosys_for_libuv_to_fall_back(worker: bytes) -> None:
    assert evaluate(worker, X86_64["io_uring_setup"]) == RET_ENOSYS
    assert evaluate(worker, X86_64["io_uring_enter"]) == bpf.RET_KILL_PROCESS


def test_differs_from_the_child_filter_only_where_the_policy_says(worker: bytes, child: bytes) -> None:
    """Every number up to 1024, with a fork's clone flags and another process's pid."""
    different = {X86_64[n] for n in policy.WORKER_NOTIFY} | {X86_64["io_uring_setup"]}
    for nr in range(1024):
        args = (0x11,) if nr == X86_64["clone"] else (1, 9)
        if nr in different:
            assert evaluate(child, nr, args) == bpf.RET_KILL_PROCESS, nr
        else:
            assert evaluate(worker, nr, args) == evaluate(child, nr, args), nr


@pytest.mark.parametrize("name", ["connect", "bind", "fork", "vfork", "ptrace", "process_vm_readv",
                                  "unshare", "setns", "mount", "bpf", "userfaultfd", "pidfd_open"])
def test_what_node_never_needs_still_kills(worker: bytes, name: str) -> None:
    assert evaluate(worker, X86_64[name]) == bpf.RET_KILL_PROCESS


def test_creating_a_socket_fails_with_eperm_as_for_a_child(worker: bytes) -> None:
    assert evaluate(worker, X86_64["socket"]) == bpf.RET_ERRNO | 1


def test_threads_are_allowed_and_forks_are_not(worker: bytes) -> None:
    nr = X86_64["clone"]
    assert evaluate(worker, nr, (0x3D0F00,)) == bpf.RET_ALLOW
    assert evaluate(worker, nr, (0x11,)) == bpf.RET_KILL_PROCESS
