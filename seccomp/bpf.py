"""Compile the per-child policy into a classic BPF program for ``seccomp(SET_MODE_FILTER)``.

The program is built once, in the runner, and handed to the zygote; every child patches its own
pid into the instructions listed in ``pid_slots`` (their ``k`` field) and installs it. So no
compilation happens in the child, and no library is needed inside the jail.

Order of checks: architecture (anything but x86_64 is killed: a 32-bit syscall table would
bypass every rule), x32 numbers (killed), then a binary search over the numbers that have a
rule (kill; ENOSYS; EPERM; a supervisor's answer; ``clone`` for threads only;
``kill``/``tkill``/``tgkill`` to its own pid only), leading to the argument checks where a rule
needs them; everything else is left to the jail filter underneath.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

from seccomp.syscalls import AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, X86_64

# classic BPF opcodes (linux/filter.h)
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

# rules tested one by one at the leaves of the binary search
_LEAF_RULES = 4

RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
ENOSYS = 38
EPERM = 1

# offsets into struct seccomp_data
OFF_NR = 0
OFF_ARCH = 4


def arg_low(index: int) -> int:
    return 16 + 8 * index


def arg_high(index: int) -> int:
    return 16 + 8 * index + 4


CLONE_THREAD = 0x00010000
PID_PLACEHOLDER = 0  # a pid can never be 0, so an unpatched program allows no kill at all
INSTRUCTION = struct.Struct("=HBBI")


@dataclass(frozen=True)
class Insn:
    code: int
    k: int = 0
    jt: str | int = 0  # a label, or 0 for "next instruction"
    jf: str | int = 0


@dataclass(frozen=True)
class ChildFilter:
    """The compiled per-child filter: raw ``struct sock_filter`` array and the pid slots."""

    program: bytes
    pid_slots: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.program) // INSTRUCTION.size


def compile_child(
    kill: frozenset[str],
    self_only: frozenset[str],
    threads_only: frozenset[str],
    enosys: frozenset[str],
    eperm: frozenset[str] = frozenset(),
    notify: frozenset[str] = frozenset(),
) -> ChildFilter:
    """Build the per-child program from the policy's name sets (x86_64). ``notify``: calls
    handed to a user-space supervisor (``SECCOMP_RET_USER_NOTIF``); with no supervisor
    listening they fail with ENOSYS (the pyodide worker's one exec, see ``seccomp.policy``)."""
    rules = sorted(
        [(number(n), "kill") for n in kill] + [(number(n), "enosys") for n in enosys]
        + [(number(n), "eperm") for n in eperm] + [(number(n), "notify") for n in notify]
        + [(number(n), "threads") for n in threads_only] + [(number(n), "self") for n in self_only]
    )
    if len({nr for nr, _ in rules}) != len(rules):
        raise ValueError("a system call appears in more than one rule of the child policy")
    insns: list[tuple[list[str], Insn]] = []
    pending: list[str] = []  # labels of the next instruction emitted
    pid_labels: list[int] = []
    nodes = itertools.count()

    def emit(insn: Insn, label: str | None = None) -> None:
        insns.append((pending[:] + ([label] if label else []), insn))
        pending.clear()

    def search(part: list[tuple[int, str]]) -> None:
        """A binary search on the number: a syscall costs about log2(rules) comparisons
        rather than one per rule, both when the kernel evaluates the filter for every number
        at install time (to cache constant verdicts) and on each call the filter sees."""
        if len(part) <= _LEAF_RULES:
            for nr, label in part:
                emit(Insn(JEQ_K, nr, jt=label, jf=0))
            emit(Insn(RET_K, RET_ALLOW))  # no rule for it: the jail filter underneath decides
            return
        mid = len(part) // 2
        upper = f"n{next(nodes)}"
        emit(Insn(JGE_K, part[mid][0], jt=upper, jf=0))
        search(part[:mid])
        pending.append(upper)
        search(part[mid:])

    emit(Insn(LD_W_ABS, OFF_ARCH))
    emit(Insn(JEQ_K, AUDIT_ARCH_X86_64, jt=0, jf="kill"))
    emit(Insn(LD_W_ABS, OFF_NR))
    emit(Insn(JGE_K, X32_SYSCALL_BIT, jt="kill", jf=0))
    search(rules)
    emit(Insn(LD_W_ABS, arg_low(0)), label="threads")
    emit(Insn(JSET_K, CLONE_THREAD, jt="allow", jf="kill"))
    emit(Insn(LD_W_ABS, arg_low(0)), label="self")
    pid_labels.append(len(insns))
    emit(Insn(JEQ_K, PID_PLACEHOLDER, jt=0, jf="kill"))
    emit(Insn(LD_W_ABS, arg_high(0)))
    emit(Insn(JEQ_K, 0, jt="allow", jf="kill"))
    emit(Insn(RET_K, RET_ERRNO | ENOSYS), label="enosys")
    emit(Insn(RET_K, RET_ERRNO | EPERM), label="eperm")
    if notify:
        emit(Insn(RET_K, RET_USER_NOTIF), label="notify")
    emit(Insn(RET_K, RET_ALLOW), label="allow")
    emit(Insn(RET_K, RET_KILL_PROCESS), label="kill")
    return ChildFilter(program=_assemble(insns), pid_slots=tuple(pid_labels))


def number(name: str) -> int:
    try:
        return X86_64[name]
    except KeyError:
        raise ValueError(f"unknown x86_64 system call {name!r} in the seccomp policy") from None


def _assemble(insns: list[tuple[list[str], Insn]]) -> bytes:
    labels = {label: i for i, (names, _) in enumerate(insns) for label in names}
    out = bytearray()
    for i, (_, insn) in enumerate(insns):
        jt = _offset(i, insn.jt, labels)
        jf = _offset(i, insn.jf, labels)
        out += INSTRUCTION.pack(insn.code, jt, jf, insn.k)
    return bytes(out)


def _offset(at: int, target: str | int, labels: dict[str, int]) -> int:
    if isinstance(target, int):
        return target
    distance = labels[target] - at - 1
    if not 0 <= distance <= 255:
        raise ValueError(f"jump to {target!r} from {at} does not fit in a BPF offset")
    return distance

