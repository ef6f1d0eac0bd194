"""The syscall policy, written once: what the jail allows, and what a child may not do.

Two layers read it (DESIGN.md, "Isolation, in layers"):

- the **jail filter**, installed by nsjail on the whole jail before the zygote starts: an
  allow-list of what an interpreter, its zygote and its children need. Anything else fails
  with EPERM, a clean exception for the snippet. ``clone3`` fails with ENOSYS so that libc
  falls back to ``clone``, whose flags a filter can inspect.
- the **child filter**, installed by each forked child on itself before it reads its task,
  stacked on the jail filter (the kernel applies the stricter answer): the calls in
  ``CHILD_KILL`` kill the child on the spot (status ``violation``); those in ``CHILD_EPERM``
  fail with EPERM; ``kill``/``tkill``/``tgkill`` may only target the child itself; ``clone``
  may only make a thread, which the child's RLIMIT_NPROC of 0 then refuses with EAGAIN (a
  clean "can't start new thread").

Kill or fail, decided per call: creating a socket fails (EPERM), because library code probes
for local services and handles the refusal (glibc's user lookup asks nscd, libuuid asks
uuidd) and killing the child for that breaks ordinary code (``os.path.expanduser``,
``uuid.uuid1``, ``sysconfig``); a snippet's own socket fails the same way, and no network
is reachable from the jail anyway (no interface in its network namespace). Everything a
socket would be needed for (connect, bind, listen, accept) and everything that makes or
inspects processes or mounts kills: no library does that by accident in a child, so the
only callers are snippets probing the walls, and a kill stops them at the first probe.

Names are the kernel's x86_64 names; ``KAFEL_NAMES`` maps the few that nsjail's policy
language spells differently.
"""

from __future__ import annotations

ENOSYS = 38
EPERM = 1

_FILES = """
read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 open openat close
close_range stat fstat lstat newfstatat statx statfs fstatfs lseek access faccessat faccessat2
readlink readlinkat getdents getdents64 getcwd chdir fchdir fcntl flock fsync fdatasync dup
dup2 dup3 pipe pipe2 ioctl fadvise64 sendfile copy_file_range splice tee umask truncate
ftruncate mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2 creat utimensat
fallocate getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr
"""
_MEMORY = "mmap munmap mprotect mremap brk madvise mincore msync membarrier"
_SIGNALS = """
rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend
sigaltstack kill tkill tgkill pause alarm getitimer setitimer restart_syscall
"""
_TIME = """
nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time times timer_create
timer_settime timer_gettime timer_getoverrun timer_delete timerfd_create timerfd_settime
timerfd_gettime
"""
_PROCESS = """
exit exit_group getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid
getgroups getpgrp getpgid getsid set_tid_address set_robust_list get_robust_list rseq futex
arch_prctl prctl prlimit64 getrlimit setrlimit getrusage sched_yield sched_getaffinity
sched_getparam sched_getscheduler sched_get_priority_max sched_get_priority_min getpriority
getcpu uname sysinfo getrandom capget seccomp setpriority
"""
# The zygote forks children and watches them; nsjail execs the zygote after installing the
# jail filter. The child filter takes all of these away again.
_ZYGOTE = "clone fork vfork execve wait4 waitid pidfd_open"
_EVENTS = """
poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
epoll_pwait2 eventfd eventfd2 signalfd signalfd4
"""
# Only what an already-connected socketpair needs (the task channel, the control channel):
# no socket, connect, bind, listen or accept, and the jail has no network anyway.
_CHANNELS = """
socketpair sendto recvfrom sendmsg recvmsg shutdown getsockopt setsockopt getsockname
getpeername
"""

JAIL_ALLOW: frozenset[str] = frozenset(
    " ".join((_FILES, _MEMORY, _SIGNALS, _TIME, _PROCESS, _ZYGOTE, _EVENTS, _CHANNELS)).split()
)
JAIL_ENOSYS: frozenset[str] = frozenset({"clone3"})
# Only in a jail whose tasks have directories of their own (the operator's ``files_mb``): what
# a child needs to make its tmpfs in a mount namespace of its own and then drop the one
# capability the jail kept for it (runtimes/files.py), before its own filter, which kills all
# three (CHILD_KILL). Every other jail is refused them, as before (EPERM).
JAIL_FILES: frozenset[str] = frozenset({"unshare", "mount", "capset"})

# A child that calls any of these is killed (SIGSYS): a snippet has no business with them,
# and a clean error would only invite probing.
CHILD_KILL: frozenset[str] = frozenset(
    """
    fork vfork execve execveat connect bind listen accept accept4
    ptrace process_vm_readv process_vm_writev process_madvise process_mrelease kcmp
    pidfd_open pidfd_getfd pidfd_send_signal rt_sigqueueinfo rt_tgsigqueueinfo setns unshare capset
    mount umount2 pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick
    mount_setattr bpf perf_event_open io_uring_setup io_uring_enter io_uring_register
    userfaultfd keyctl add_key request_key kexec_load kexec_file_load init_module finit_module
    delete_module reboot swapon swapoff acct quotactl quotactl_fd open_by_handle_at
    name_to_handle_at iopl ioperm modify_ldt lookup_dcookie vhangup syslog personality
    settimeofday clock_settime clock_adjtime adjtimex move_pages migrate_pages
    """.split()
)
# Fails with ENOSYS: clone3 hides its flags from a filter, so libc must fall back to clone.
CHILD_ENOSYS: frozenset[str] = frozenset({"clone3"})
# Fails with EPERM: library code probes for local services with these (see above).
CHILD_EPERM: frozenset[str] = frozenset({"socket", "socketpair"})
# May only signal the calling process: the first argument must equal the child's own pid.
CHILD_SELF_ONLY: frozenset[str] = frozenset({"kill", "tkill", "tgkill"})
# Allowed only with CLONE_THREAD in its flags; a fork-like clone kills the child.
CHILD_THREADS_ONLY: frozenset[str] = frozenset({"clone"})

KAFEL_NAMES: dict[str, str] = {
    "stat": "newstat",
    "fstat": "newfstat",
    "lstat": "newlstat",
    "sendfile": "sendfile64",
    "uname": "newuname",
    "umount2": "umount",
    "_sysctl": "sysctl",
}

# -- the pyodide worker (runtimes/pyodide): a Node.js process serving several tasks ---------
# Its filter is the child filter with these differences, each forced by Node.js 20:
#
# - ``execve``/``execveat`` are handed to a supervisor (SECCOMP_RET_USER_NOTIF) instead of
#   killing: the forked child must exec node once, after installing its filter. The launch
#   answers exactly that one exec and closes its listener; with no listener left, the kernel
#   fails every later exec with ENOSYS (so an exec from the worker is an error, not a kill).
# - ``io_uring_setup`` fails with ENOSYS instead of killing: libuv probes io_uring at start
#   and falls back to epoll and its thread pool. ``io_uring_enter``/``register`` still kill.
# - threads are allowed as for the child (``clone`` with CLONE_THREAD only), and the worker's
#   RLIMIT_NPROC is not 0: V8's platform threads, libuv's pool and the timeout watchdog are
#   threads. The jail's cgroup pids cap bounds them.
WORKER_NOTIFY: frozenset[str] = frozenset({"execve", "execveat"})
WORKER_ENOSYS: frozenset[str] = CHILD_ENOSYS | {"io_uring_setup"}
WORKER_KILL: frozenset[str] = CHILD_KILL - WORKER_NOTIFY - WORKER_ENOSYS
WORKER_EPERM: frozenset[str] = CHILD_EPERM
WORKER_SELF_ONLY: frozenset[str] = CHILD_SELF_ONLY
WORKER_THREADS_ONLY: frozenset[str] = CHILD_THREADS_ONLY
