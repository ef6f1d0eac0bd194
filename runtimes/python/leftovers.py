"""Worker mode: what a task starts from, and the check that retires a worker that was changed.

Decision. A python worker runs its tasks in itself, one after another, each with fresh
globals and a fresh copy of the builtins; after each task, before its result leaves (so before
the next task's data can enter the process), it compares what the task could reach with the
pristine state, and retires when anything differs. The alternative that holds by construction
of the operating system, a pristine worker that forks a fresh process for each task, was
measured first and rejected: a fork, its copy-on-write faults and the teardown cost about
1.9 ms of CPU per task here (``fork + run + exit``, 300 trivial tasks, a process with our
preloads), against 0.03 ms for the task run in place and 0.25-0.35 ms for a whole worker-mode
round trip through the local API; worker mode would lose most of what it exists for. It would
also need children that may fork, which the child filter denies (seccomp/policy.py) and the pool
would have to spawn as a kind of their own.

So the reset holds by construction of the interpreter instead, in three parts, none of which
trusts code a snippet could have rewritten:

1. A tripwire: an audit hook (``sys.addaudithook``), installed when a process becomes a worker,
   before its first task's data is read. The interpreter calls it from C before the operations
   that install hooks or swap code, or that reach objects only the interpreter holds or raw
   memory: ``sys.settrace``, ``sys.setprofile``, ``sys.addaudithook`` (refused as well: a hook
   cannot be removed), setting ``__code__``, ``__defaults__``, ``__kwdefaults__``, a class's
   special attributes (``__bases__``, ``__module__``...) or ``__class__`` of a pristine
   function, class or module (a snippet's own dataclass sets its own ``__init__``'s defaults)
   or of the worker's own machinery (the check, this hook and the functions they read with:
   a snippet reaches them through the frames of its own traceback, so none of them is a
   ``functools.partial`` or holds a closure cell, which change unannounced), ``__class__``
   of any object (an instance's class is in no dict part 2 reads),
   ``gc.get_objects``/``get_referrers``/``get_referents`` (the only way to the
   interpreter's own hook list), every ``ctypes`` operation, ``os.putenv``/``unsetenv`` (the C
   environment cannot be read back), ``resource.setrlimit`` and ``resource.prlimit`` setting a
   limit (all but the task's own, which the child sets again for every task: so no resource
   limit is read back after a task). It marks the process in the kernel, one way: it lowers the
   hard limit ``TAINT_RLIMIT`` to 0, which an unprivileged process can never raise again. The host
   reads that limit from outside after every result (``sandbox.host.pools``) and retires a marked
   worker, whatever the process says of itself. The hook holds every reference it uses as a
   default argument, so no rebinding of a module or builtin name changes what it does, and
   replacing its defaults or code is itself an event it sees.
2. A comparison with the pristine state, read (``arm``) when the process becomes a worker;
   what to read, and the objects that keep what is compared alive, are planned once in the
   zygote (``survey``, ``_Plan``): a worker reads its pristine state with that plan when
   nothing came since (no module imported, no class made: where every class keeps its
   subclasses says so), and plans again otherwise.
   Every dict the survey finds: the namespace of every module in ``sys.modules``, the namespace
   of every mutable class reachable by the subclass walk from ``object``, and, one level down
   from a module namespace, each dict it holds, each object's ``__dict__`` (``os.environ``'s
   data two levels down), the ``__kwdefaults__`` of every function, dicts among its defaults and
   closure cells. A dict is compared by its version tag (PEP 509: CPython gives a dict a new
   tag on every change), read in one gather through a (read-only) view of the address space, so
   a change inside any of them is seen, however it was made. The writable slots of those
   objects (their classes' ``__slots__``, which no dict holds; functions' aside) are compared
   by the words they hold, their pristine contents kept alive. Lists and sets at those places are
   compared by where their items are stored (the words that say where and how many, one
   gather) and then, only where none moved, by the object addresses stored there, read in
   place: no item is touched, which on a busy machine cost more than the reading. Closure
   cells (their pristine contents kept alive, as the lists' items are, so that no address
   read through them can come back as another object's), ``sys`` itself and ``sys.modules``
   are compared item by item, by identity;
   ``sys.modules`` only when its own version tag moved (a task imported something, which the
   check drops first, or changed it): an unmoved tag says its items are the pristine ones,
   and touching its ~1,200 keys and modules on cold caches cost about 0.1 ms a task. Nothing
   is compared with ``==`` (which would run the snippet's ``__eq__``). Interpreter settings
   are compared by value:
   the recursion and int-digit limits, the switch interval, trace and profile functions, async
   generator hooks, coroutine origin depth, dlopen flags, gc's state and thresholds, signal
   handlers, the signal mask and interval timers, the working directory, umask, every context
   variable (decimal's context among them, and the decimal
   contexts' settings), the ABC cache token (any ``register``), and the C locale.
3. Order and references. The check runs in the child's own loop through a function taken before
   the first task (a local of the loop's frame, ``runtimes.child``), with every reference it uses
   bound as a default argument; before it compares, the executor puts back what it changes
   itself (``sys.stdout`` and ``sys.stderr``; it leaves nothing in ``linecache``: a traceback
   takes the snippet's lines from its code), modules imported by the task are dropped
   from ``sys.modules`` (the next task imports them afresh), the caches snippets fill in
   passing are emptied (``re``'s patterns, ``linecache``, the import system's module locks;
   emptying a cache is always safe, and they are then compared as empty) and so are the flags
   of decimal's current context, and the garbage is collected, so that a finalizer or a weakref
   callback of the task runs now and is seen, not during the next task. A difference also
   lowers the limit (part 1); the host never hands the worker another task. A task that
   imports a module the zygote did not preload usually leaves a trace in a pristine module
   (a package's new attribute, ``platform``'s cache) and so retires its worker: correct, and
   as costly as the default mode for that task.

Cost, measured on this project's shared 2-vCPU machine under a load average of 5 to 11 (so
read ratios, not absolutes): to arm a worker (once per worker), 5-8 ms when each worker
walked the classes and built what keeps the compared objects alive itself (its references
copied thousands of the zygote's pages), 0.3-0.8 ms with the zygote's plan; and 0.17-0.20 ms of
CPU per task for the check, timed inside a jailed worker over 1,000 trivial tasks: reading
~1,600 version tags (~50 us), the interpreter settings (~35 us, most of it 16 getrlimit calls,
since replaced by the tripwire), where ~330 lists and sets keep their items and the addresses
stored there (~50 us), ``sys`` and ``sys.modules`` item by item (~15 us), the cells (~12 us),
the reseed (~6 us) and the collection (~6 us). Comparing the lists and sets where they keep
their items, instead of taking each item into a tuple, cut the check by 3-13% (three
alternating runs: 201, 190, 196 -> 174, 185, 196 us) and writes no page the worker shares
with its zygote. Nearly all of it is the interpreter's overhead per object read (about 20-30 ns
each), not the reading itself.

Through the daemon, worker mode at 16 clients had fallen to 0.17-0.28x of the code before this
check, but most of that was not the check: each thread of one client had a connection of its
own, and each connection was a principal of its own (broker/server.py), so 16 threads took
turns evicting each other's workers, and nearly every task started a fresh process. The threads
of one client object are one principal now. What is left, per task, by process (16 threads,
8 slots, ``sandbox serve``, summed over each process's threads, two alternating runs):
jail 90-97 -> 169-205 us (this check), runner 144-157 -> 205-231 us, broker 152-198 ->
277-294 us; the broker's pure core with the protocol codec alone went from 48-50 to 55-58 us,
so most of the broker's share is in its loop around the core.

The reads themselves are in C where the install compiled ``runtimes/python/_gather.c`` (the
version tags, cells and the words of the lists and sets in one call each, and the addresses
their items are stored at in another): through a memoryview each word became a Python int,
and on the cold caches a busy daemon leaves a worker that cost ~200 ns a word. In one process
with its caches evicted before every task (a 64 MB write), the check went from 490-510 us to
about 200 us (tags 342 -> 20 us, cells 96 -> 6, the lists' and sets' heads 108 -> 6, their
items 88 -> 24); warm, 250 -> about 70 us. What is left is the interpreter settings (~85 us
cold), the collection (~45) and ``sys`` item by item (~20). Where it was not built, the same
words are read the slower way and compared the same. What would remove the check's own
cost: CPython 3.12's dict, type and function watchers (``PyDict_AddWatcher``...), which
call back on the change itself; a small C extension registering them could set the mark of
part 1 directly, and nothing would be compared after a task.

What this does not see, and so may pass from one task to the next of one worker (one principal:
a worker never serves two), is stated in the README: changes further down than the survey goes
(an item put into a list inside a dict inside a module), attributes set on functions, state of
the interpreter's C parts that no Python call shows (a codec search function, an
``lru_cache``'s entries), and memory corruption by a bug of the interpreter itself (``ctypes``,
the tool for it, trips the wire).
"""

from __future__ import annotations

import _signal
import abc
import contextvars
import ctypes
import gc
import itertools
import operator
import os
import resource
import signal
import struct
import sys
from collections.abc import Callable
from types import FunctionType, MemberDescriptorType, ModuleType
from typing import Any

from runtimes.protocol import TAINT_RLIMIT

# the check's reads in C (runtimes/python/_gather.c, built by the package's install), or
# None where it was not built (no compiler): the same reads in Python
_gather: Callable[[bytes], bytes] | None
_spans: Callable[[bytes], bytes] | None
try:
    from runtimes.python._gather import gather as _gather
    from runtimes.python._gather import spans as _spans
except ImportError:
    _gather = _spans = None

# CPython 3.11's layouts, x86_64: a dict's version tag, a type's dict, a cell's object, a
# tuple's items; a list's length and item array; a set's fill, used, mask and table (of
# mask + 1 entries of a key's address and its hash).
_DICT_VERSION_AT = 24
_TYPE_DICT_AT = 264
_CELL_REF_AT = 16
_LIST_HEAD_AT = (16, 24)
_SET_HEAD_AT = (16, 24, 32, 40)
_SET_ENTRY_BYTES = 16
_HEAPTYPE = 1 << 9
_IMMUTABLETYPE = 1 << 8
# every 8-byte word of the address space, readable by index (only the words asked for are
# touched); one itemgetter call gathers many of them in C
# (read-only: what reaches the view, as a snippet can through the check's defaults, reads)
_RAW = memoryview((ctypes.c_uint64 * (1 << 44)).from_address(0)).cast("B").toreadonly()
_WORDS = _RAW.cast("Q")
_TUPLE_ITEMS_AT = 24
# where a type keeps the dict of its subclasses (after tp_bases, tp_mro and tp_cache)
_TYPE_SUBCLASSES_AT = 360

_TRIPPING = frozenset({
    "sys.settrace", "sys.setprofile", "sys.addaudithook", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "os.putenv", "os.unsetenv",
})
# raised for the assignments that rewrite a function (__code__, __defaults__, __kwdefaults__), a
# class's special attributes (__bases__, __module__, ...) or an object's __class__: a trip only
# when the object is one of the worker's pristine ones (a snippet's own dataclass sets the
# __defaults__ of its own __init__)
_REWRITES = frozenset({"object.__setattr__", "object.__delattr__"})
# (module, name) of the caches a worker empties after each task (see ``arm``): re's patterns,
# linecache's lines, and the import system's per-module locks (empty between imports)
_CACHES = (("re", "_cache"), ("linecache", "cache"), ("_frozen_importlib", "_module_locks"),
           ("_frozen_importlib", "_blocking_on"))
# limits the child sets per task (runtimes.child), and the tripwire's own
_TASK_LIMITS = frozenset({resource.RLIMIT_AS, resource.RLIMIT_CPU, TAINT_RLIMIT})


def _tripwire(pristine: frozenset[int]) -> Any:
    def trip(event: str, args: tuple[Any, ...], _tripping: frozenset[str] = _TRIPPING,
             _rewrites: frozenset[str] = _REWRITES, _pristine: frozenset[int] = pristine,
             _own: frozenset[int] = frozenset(),
             _startswith: Callable[..., bool] = str.startswith, _id: Callable[[Any], int] = id,
             _str_eq: Callable[..., Any] = str.__eq__,
             _setrlimit: Callable[..., None] = resource.setrlimit, _limit: int = TAINT_RLIMIT,
             _task_limits: frozenset[int] = _TASK_LIMITS,
             _refusal: type[Exception] = RuntimeError) -> None:
        """The tripwire (part 1). Only defaults and constants: nothing a snippet can rebind.
        ``_pristine`` holds the ids of the pristine functions, classes and modules, ``_own``
        those of the worker's own machinery (this function among them), all kept alive for
        good. Any
        object's ``__class__`` assigned trips it too: an instance's class is in no dict the
        check reads."""
        if (event in _tripping or _startswith(event, "ctypes.")
                or (event in _rewrites and (_id(args[0]) in _pristine or _id(args[0]) in _own
                                            or _str_eq(args[1], "__class__") is True))
                # a resource limit set, but the ones the child sets for every task (and the
                # mark itself); prlimit sets nothing when its limits are None
                or (event == "resource.setrlimit" and args[0] not in _task_limits)
                or (event == "resource.prlimit" and args[2] is not None)):
            try:
                _setrlimit(_limit, (0, 0))
            except BaseException:
                pass
            if event == "sys.addaudithook":
                raise _refusal("audit hooks are refused in a worker")

    return trip


def _words(addresses: list[int], pad: int) -> Callable[[], Any]:
    """A call that reads the 8-byte words at ``addresses``, as a value to compare with ``==``:
    in C (``_gather``) when it was built, else by one gather through the address space's view
    (also reading twice at ``pad``, a word that is always there, so that the answer is a
    tuple even for one address). One process uses one of them throughout."""
    if _gather is not None:
        return _reader(_gather, struct.pack(f"{len(addresses)}Q", *addresses))
    return _reader(operator.itemgetter(*[a >> 3 for a in addresses], pad >> 3, pad >> 3), _WORDS)


def _span_bytes(spans: list[slice]) -> Callable[[], bytes]:
    """A call that reads the bytes of the address space in each of ``spans``, one after the
    other (in C when it was built, as ``_words``)."""
    if _spans is not None:
        pairs = [n for span in spans for n in (span.start, span.stop - span.start)]
        return _reader(_spans, struct.pack(f"{len(pairs)}Q", *pairs))
    # at least two slices, so that the gather's answer is a tuple

    def read(_get: Any = operator.itemgetter(*spans, slice(0, 0), slice(0, 0)),
             _raw: Any = _RAW, _join: Any = b"".join) -> bytes:
        joined: bytes = _join(_get(_raw))
        return joined

    return read


def _reader(function: Callable[[Any], Any], argument: Any) -> Callable[[], Any]:
    """``function(argument)`` as a function whose references are its defaults alone: no
    closure cell and no ``functools.partial`` (whose ``__setstate__`` rewrites it in place,
    unseen), so that rewriting it is an event the tripwire sees (``arm`` protects it)."""

    def read(_function: Callable[[Any], Any] = function, _argument: Any = argument) -> Any:
        return _function(_argument)

    return read


class _Survey:
    """What part 2 watches: dicts (by tag), lists and sets (by items), cells (by contents),
    found from the modules and classes given; ``add`` is called again for ones found later."""

    def __init__(self) -> None:
        self.dicts: dict[int, dict[Any, Any]] = {}
        self.sequences: dict[int, Any] = {}
        self.cells: dict[int, Any] = {}
        self.modules: set[int] = set()
        self.classes: set[int] = set()
        # the functions, classes and modules found: what the tripwire calls pristine
        self.objects: dict[int, Any] = {}
        # objects whose class gives them writable slots (``__slots__``): no dict holds those
        self.slotted: dict[int, Any] = {}

    def add(self, modules: list[Any], classes: list[type]) -> None:
        functions: list[FunctionType] = []
        for module in modules:
            if isinstance(module, ModuleType) and id(module) not in self.modules:
                self.modules.add(id(module))
                self.objects[id(module)] = module
                namespace = vars(module)
                self.dicts.setdefault(id(namespace), namespace)
                for value in list(namespace.values()):
                    self._one_level(value, 1, functions)
        for cls in classes:
            if id(cls) in self.classes:
                continue
            self.classes.add(id(cls))
            self.objects[id(cls)] = cls
            if cls.__flags__ & _HEAPTYPE and not cls.__flags__ & _IMMUTABLETYPE:
                namespace = ctypes.cast(_WORDS[(id(cls) + _TYPE_DICT_AT) >> 3],
                                        ctypes.py_object).value
                if type(namespace) is dict:
                    self.dicts.setdefault(id(namespace), namespace)
                    functions.extend(v for v in namespace.values() if type(v) is FunctionType)
        seen: set[int] = set()
        for function in functions:  # grows while it runs: functions found in defaults, cells
            if id(function) in seen:
                continue
            seen.add(id(function))
            self.objects[id(function)] = function
            if function.__kwdefaults__ is not None:
                self.dicts.setdefault(id(function.__kwdefaults__), function.__kwdefaults__)
            for default in function.__defaults__ or ():
                self._one_level(default, 0, functions)
            for cell in function.__closure__ or ():
                self.cells.setdefault(id(cell), cell)
                try:
                    self._one_level(cell.cell_contents, 0, functions)
                except ValueError:
                    pass  # an empty cell
        # ours, compared item by item after the executor put them back (part 3)
        for own in (vars(sys), sys.modules):
            self.dicts.pop(id(own), None)

    def _one_level(self, value: Any, depth: int, functions: list[FunctionType]) -> None:
        kind = type(value)
        if kind is dict:
            self.dicts.setdefault(id(value), value)
            if depth:
                for inner in list(value.values()):
                    self._one_level(inner, depth - 1, functions)
        elif kind is list or kind is set:
            self.sequences.setdefault(id(value), value)
        elif kind is FunctionType:
            functions.append(value)
        elif not isinstance(value, (type, ModuleType)):
            inner = getattr(value, "__dict__", None) if hasattr(type(value), "__dict__") else None
            if type(inner) is dict:
                self._one_level(inner, depth, functions)
            # (functions of C and Cython aside: attributes set on functions are not compared)
            if kind.__name__ not in _FUNCTION_KINDS and _writable_slots(kind):
                self.slotted.setdefault(id(value), value)


# CPython 3.11's layouts: a member descriptor's PyMemberDef, and in it the member's offset in
# its object and its flags
_MEMBER_DEF_AT = 40
_MEMBER_OFFSET_AT, _MEMBER_FLAGS_AT, _READONLY = 16, 24, 1
_slots_of: dict[type, tuple[tuple[MemberDescriptorType, int], ...]] = {}
_FUNCTION_KINDS = frozenset({"builtin_function_or_method", "builtin_method",
                             "cython_function_or_method", "method-wrapper"})


def _writable_slots(cls: type) -> tuple[tuple[MemberDescriptorType, int], ...]:
    """``cls``'s writable slots (members not read-only), each with where its instances keep
    it, read from the member descriptors of its classes; () where the layout check failed."""
    found = _slots_of.get(cls)
    if found is None:
        members: dict[int, MemberDescriptorType] = {}
        if _member_layout_holds:
            for base in cls.__mro__:
                for descriptor in vars(base).values():
                    if type(descriptor) is MemberDescriptorType:
                        member = _WORDS[(id(descriptor) + _MEMBER_DEF_AT) >> 3]
                        flags = int.from_bytes(
                            _RAW[member + _MEMBER_FLAGS_AT:member + _MEMBER_FLAGS_AT + 4], "little")
                        if not flags & _READONLY:
                            members.setdefault(_WORDS[(member + _MEMBER_OFFSET_AT) >> 3],
                                               descriptor)
        found = _slots_of[cls] = tuple((d, offset) for offset, d in sorted(members.items()))
    return found


def _check_member_layout() -> bool:
    """Whether a slot's offset reads as this module assumes: a probe's slot holds the very
    object put there, and a read-only member says so."""
    if sys.version_info[:2] != (3, 11):
        return False

    class Probe:
        __slots__ = ("first", "second")
        first: object
        second: object

    probe, marker = Probe(), object()
    probe.second = marker
    member = _WORDS[(id(Probe.__dict__["second"]) + _MEMBER_DEF_AT) >> 3]
    offset = _WORDS[(member + _MEMBER_OFFSET_AT) >> 3]
    readonly = _WORDS[(id(slice.__dict__["start"]) + _MEMBER_DEF_AT) >> 3]
    return (type(Probe.__dict__["second"]) is MemberDescriptorType
            and _WORDS[(id(probe) + offset) >> 3] == id(marker)
            and bool(_RAW[readonly + _MEMBER_FLAGS_AT] & _READONLY))


_member_layout_holds = _check_member_layout()


def _classes() -> list[type]:
    """Every class the subclass walk from ``object`` reaches."""
    seen: dict[int, type] = {}
    todo: list[type] = [object]
    while todo:
        cls = todo.pop()
        if id(cls) not in seen:
            seen[id(cls)] = cls
            todo.extend(type.__subclasses__(cls))
    return list(seen.values())


_surveyed = _Survey()


def survey() -> None:
    """In the zygote, once its modules are loaded (``executor.preload``): the survey and the
    plan of what a worker reads (``_Plan``), made once and inherited by every child, off
    every task's path."""
    global _planned
    _planned = _Plan()  # which surveys first


def _settings(sigs: tuple[int, ...]) -> Callable[[], tuple[Any, ...]]:
    """The interpreter's settings, read by C functions taken now (see part 2)."""
    decimal = sys.modules.get("decimal")
    contexts: tuple[Any, ...] = ()
    if decimal is not None:
        contexts = (decimal.DefaultContext, decimal.BasicContext, decimal.ExtendedContext)
    locale = sys.modules.get("_locale")
    setlocale = getattr(locale, "setlocale", None)
    lc_all = getattr(locale, "LC_ALL", 6)
    decimal_repr = type(contexts[0]).__repr__ if contexts else None

    def read(_sys: Any = sys, _gc: Any = gc, _getsignal: Any = _signal.getsignal,
             _getitimer: Any = signal.getitimer, _sigmask: Any = signal.pthread_sigmask,
             _getcwd: Any = os.getcwd, _umask: Any = os.umask,
             _copy_context: Any = contextvars.copy_context, _token: Any = abc.get_cache_token,
             _map: Any = map, _tuple: Any = tuple, _type: Any = type,
             _sigs: tuple[int, ...] = sigs,
             _contexts: tuple[Any, ...] = contexts, _decimal_repr: Any = decimal_repr,
             _setlocale: Any = setlocale, _lc_all: int = lc_all, _sorted: Any = sorted,
             _list: Any = list) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """(values, objects): values are ints, floats, strs and tuples of them, compared with
        ``==``; objects (hooks, handlers, context variables and their values) by identity."""
        mask = _umask(0o022)
        _umask(mask)
        context = _list(_copy_context().items())
        objects = (
            _sys.gettrace(), _sys.getprofile(), *_sys.get_asyncgen_hooks(),
            *_map(_getsignal, _sigs), *(x for pair in context for x in pair),
        )
        values = (
            _sys.getrecursionlimit(), _sys.get_int_max_str_digits(), _sys.getswitchinterval(),
            _sys.get_coroutine_origin_tracking_depth(), _sys.getdlopenflags(),
            _gc.isenabled(), _gc.get_threshold(), _gc.get_debug(),
            _getitimer(0), _getitimer(1), _getitimer(2),
            _tuple(_sorted(_sigmask(0, ()))), _getcwd(), mask,
            _token(),
            # a decimal context changed in place keeps its identity: its settings then differ
            _tuple(_decimal_repr(v) for v in objects if _type(v) is _type(_contexts[0]))
            if _contexts else (),
            _tuple(_map(_decimal_repr, _contexts)) if _contexts else (),
            _setlocale(_lc_all) if _setlocale is not None else None,
        )
        return values, objects

    return read


def _settings_match(now: tuple[tuple[Any, ...], tuple[Any, ...]],
                    then: tuple[tuple[Any, ...], tuple[Any, ...]],
                    _len: Any = len, _all: Any = all, _map: Any = map,
                    _is: Any = operator.is_) -> bool:
    return (now[0] == then[0] and _len(now[1]) == _len(then[1])
            and _all(_map(_is, now[1], then[1])))


def _same_items(items: tuple[Any, ...], pristine: bytes, raw: Any, ident: Any, at: int,
                length: Any) -> bool:
    """Whether ``items`` holds the very objects whose addresses ``pristine`` lists."""
    start = ident(items) + at
    same: bool = raw[start:start + 8 * length(items)].tobytes() == pristine
    return same


def _where_items(sequence: Any) -> tuple[list[int], slice]:
    """The addresses of the words that say where a list's or a set's items are (and how many),
    and the slice of the address space its items' addresses fill now."""
    at = id(sequence)
    if type(sequence) is list:
        heads = [at + offset for offset in _LIST_HEAD_AT]
        start, length = _WORDS[(at + _LIST_HEAD_AT[1]) >> 3], 8 * len(sequence)
    else:
        heads = [at + offset for offset in _SET_HEAD_AT]
        start = _WORDS[(at + _SET_HEAD_AT[3]) >> 3]
        length = _SET_ENTRY_BYTES * (_WORDS[(at + _SET_HEAD_AT[2]) >> 3] + 1)
    return heads, slice(start, start + length) if length else slice(0, 0)


class _Plan:
    """What ``arm`` reads and where, and what keeps the compared objects alive: everything but
    the pristine readings themselves. Made once in the zygote (``survey``) and inherited, so
    that a worker's start neither walks the classes again nor builds these tuples, whose
    references would copy thousands of the zygote's pages (about 5 ms a worker, 50-70 us a
    task over a worker's life); a worker checks that it still fits (``fits``) and makes its
    own where it does not."""

    def __init__(self) -> None:
        classes = _classes()
        # the survey (in the zygote), or what came since it (a process that plans again)
        _surveyed.add(list(sys.modules.values()), classes)
        pad = id(_RAW) + 8  # the view of this module, alive for good: its type pointer
        dicts = list(_surveyed.dicts.values())
        sequences = list(_surveyed.sequences.values())
        self.cells = cells = list(_surveyed.cells.values())
        self.refs = _words([id(c) + _CELL_REF_AT for c in cells], pad)
        # the writable slots of the objects found, as the words they hold (an object's address
        # or a plain value), the objects themselves kept alive
        self.slotted = slotted = list(_surveyed.slotted.values())
        slot_words = [id(o) + offset for o in slotted for _, offset in _writable_slots(type(o))]
        self.slots = _words(slot_words, pad)
        self.held_slots = tuple(_slot_values(o) for o in slotted)
        # the cells' contents, kept alive: no address read through them can come back as
        # another object's
        self.held_cells = tuple(_contents_of(cell) for cell in cells)
        sigs = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))
        self.settings = _settings(sigs)
        self.modules = modules = sys.modules
        namespace = vars(sys)
        # the surveyed lists and sets, compared by identity where they keep their items: first
        # the words that say where their item storage is and how big (one gather), then, only
        # if none moved, the addresses of their items, read in place (one C call per list or
        # set, none per item: reading their items' addresses is cheaper than touching them)
        heads: list[int] = []
        spans: list[slice] = []
        for sequence in sequences:
            where, span = _where_items(sequence)
            heads += where
            spans.append(span)
        self.storage = _words(heads, pad)
        self.contents = _span_bytes(spans)
        self.watched, self.span_sizes = sequences, [span.stop - span.start for span in spans]
        # the pristine items, kept alive: no address in them can come back as another object's
        self.held = tuple(tuple(sequence) for sequence in sequences)
        # caches that snippets fill in passing (any regex, a traceback through the standard
        # library): emptied after every task instead of retiring the worker for them; emptying
        # a cache is always safe, and what is compared (nothing left in it) stays exact
        self.caches = caches = [
            c for c in (getattr(sys.modules.get(m), n, None) for m, n in _CACHES)
            if type(c) is dict]
        for cache in caches:
            cache.clear()
        # decimal's current context collects flags (Inexact, Rounded) as a task computes:
        # cleared after every task too; its settings are compared
        decimal = sys.modules.get("decimal")
        self.flags = (decimal.getcontext, decimal.Context, decimal.Context.clear_flags) \
            if decimal else None
        # compared by identity: every item of these, in order, as the bytes of one tuple's
        # item array (its object addresses; the tuple keeps its items alive, so an address
        # cannot come back as another object's)
        self.sequences = [modules, modules.values(), namespace, namespace.values(), *caches]
        cache_ids = {id(c) for c in caches}
        self.dicts = dicts = [d for d in dicts if id(d) not in cache_ids]
        self.tags = _words([id(d) + _DICT_VERSION_AT for d in dicts], pad)
        self.items = items = tuple(itertools.chain.from_iterable(self.sequences))
        self.items_bytes = _RAW[id(items) + _TUPLE_ITEMS_AT:
                                id(items) + _TUPLE_ITEMS_AT + 8 * len(items)].tobytes()
        self.known = tuple(modules)
        # sys.modules's own version tag: while it reads as it did here, sys.modules holds the
        # very keys and modules it held here, in order (every change gives a dict a new tag, as
        # for the surveyed dicts), and its items need not be compared one by one: their
        # addresses, the first 2 * len(modules) words of the items, are then skipped
        self.modules_tag = (id(modules) + _DICT_VERSION_AT) >> 3
        # kept alive by the survey for good, so that no id in it can come back
        self.pristine_ids = frozenset(_surveyed.objects)
        # what tells a later process that nothing came since: sys.modules's tag, and where
        # every class keeps its subclasses (a new class anywhere adds itself to a base's)
        self.classes = classes
        self.stamp = _subclasses_stamp(classes, pad)
        self.readings = (self.stamp(), self.refs(), self.storage(), self.contents(),
                         _WORDS[self.modules_tag], self.slots())

    def fits(self) -> tuple[Any, ...] | None:
        """Whether this process still is what the plan was made of: no module imported and no
        class made since, every surveyed list and set keeping its items where it did, and
        ``sys`` holding the items the plan lists. Then what keeps the pristine items alive
        here: the plan's, but for the lists, sets and cells whose items changed since (the
        child's own set-up writes some: ``runtimes.attempts``), which are held anew."""
        if (self.stamp(), self.storage(), _WORDS[self.modules_tag], self.slots()) != (
                self.readings[0], self.readings[2], self.readings[4], self.readings[5]):
            return None
        for cache in self.caches:
            cache.clear()
        skip = 16 * len(self.modules)
        if not _same_items(tuple(itertools.chain.from_iterable(self.sequences[2:])),
                           self.items_bytes[skip:], _RAW, id, _TUPLE_ITEMS_AT, len):
            return None
        held, cells = self.held, self.held_cells
        contents = self.contents()
        if contents != self.readings[3]:
            then, at, renewed = self.readings[3], 0, list(held)
            for i, size in enumerate(self.span_sizes):
                if contents[at:at + size] != then[at:at + size]:
                    renewed[i] = tuple(self.watched[i])
                at += size
            held = tuple(renewed)
        if self.refs() != self.readings[1]:
            cells = tuple(_contents_of(cell) for cell in self.cells)
        return held, cells, self.held_slots  # the slots read as in the plan: its values


_EMPTY_CELL = object()


def _slot_values(obj: Any) -> tuple[Any, ...]:
    """What ``obj``'s writable slots hold, kept alive so that no address read there can come
    back as another object's (a plain value's word is compared as it is)."""
    values = []
    for descriptor, _ in _writable_slots(type(obj)):
        try:
            values.append(descriptor.__get__(obj, type(obj)))
        except AttributeError:
            pass  # an empty slot
    return tuple(values)


def _contents_of(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY_CELL


def _subclasses_stamp(classes: list[type], pad: int) -> Callable[[], Any]:
    """A reading that changes when a class is made or dropped anywhere under ``object``: the
    words where each class keeps the dict of its subclasses (NULL until it has one), and that
    dict's version tag. Checked against the layout first (a type's bases and mro sit just
    before); a call that never reads the same (so no plan ever fits) where it differs."""
    probe = type("_Probe", (), {})
    layout_holds = (
        sys.version_info[:2] == (3, 11)
        and _WORDS[(id(probe) + _TYPE_SUBCLASSES_AT - 24) >> 3] == id(probe.__bases__)
        and _WORDS[(id(probe) + _TYPE_SUBCLASSES_AT - 16) >> 3] == id(probe.__mro__)
        and _WORDS[(id(probe) + _TYPE_SUBCLASSES_AT) >> 3] == 0)
    if layout_holds:
        sub = type("_Sub", (probe,), {})
        layout_holds = _WORDS[(id(probe) + _TYPE_SUBCLASSES_AT) >> 3] != 0
        del sub
    del probe
    gc.collect()  # the probes dropped from object's subclasses before anything is read
    if not layout_holds:
        return itertools.count().__next__
    where = _words([id(c) + _TYPE_SUBCLASSES_AT for c in classes], pad)
    dicts = [w for w in struct.unpack(f"{len(classes)}Q", _bytes_of(where())) if w]
    tags = _words([d + _DICT_VERSION_AT for d in dicts], pad)
    then = where()

    def stamp(_where: Callable[[], Any] = where, _tags: Callable[[], Any] = tags,
              _then: Any = then) -> Any:
        now = _where()
        # the tags are read only where every dict is still where it was (and so still alive)
        return (now, _tags()) if now == _then else (now, None)

    return stamp


def _bytes_of(words: Any) -> bytes:
    """The bytes of a ``_words`` reading (C's answer is bytes; the Python one a tuple)."""
    if isinstance(words, bytes):
        return words
    return struct.pack(f"{len(words) - 2}Q", *words[:-2])


def _with_default(function: Any, name: str, value: Any) -> tuple[Any, ...]:
    """``function``'s defaults with the one for parameter ``name`` replaced by ``value``."""
    code, defaults = function.__code__, list(function.__defaults__ or ())
    names = code.co_varnames[:code.co_argcount]
    defaults[names.index(name) - (len(names) - len(defaults))] = value
    return tuple(defaults)


_planned: _Plan | None = None
from_plan = False  # whether this worker armed with the zygote's plan (else one of its own)


def arm() -> Callable[[], bool]:
    """Make this process a worker: take the pristine state, install the tripwire, and return
    the check to run after every task, once the executor has put back what it changes itself
    (True: something differs, and the worker must retire)."""
    global from_plan
    plan, held = _planned, _planned.fits() if _planned is not None else None
    from_plan = plan is not None and held is not None
    if plan is None or held is None:
        plan = _Plan()
        held = plan.held, plan.held_cells, plan.held_slots
    tags, refs, settings, modules = plan.tags, plan.refs, plan.settings, plan.modules
    sequences, caches, flags, items = plan.sequences, plan.caches, plan.flags, plan.items
    storage, contents, modules_tag = plan.storage, plan.contents, plan.modules_tag
    for cache in caches:
        cache.clear()
    if flags is not None:
        flags[0]().clear_flags()
    slots = plan.slots
    pristine = (
        tags(), refs(), settings(), tuple(map(len, sequences)), plan.items_bytes,
        plan.known, items, storage(), contents(), _WORDS[modules_tag], 16 * len(modules),
        slots(),
    )
    # what keeps every compared object alive, so that no id can come back as another object's
    kept = (plan, held, pristine)
    random = sys.modules.get("random")
    # the C generator's own seed: it draws from the kernel and writes no dict
    base: Any = type(random._inst).__mro__[1] if random else None
    # seeded with 256 bits from the kernel: a seed of no argument draws 2,496 bytes, twice
    # the cost for no stream a snippet could predict the better
    reseed = (base.seed, random._inst, os.urandom, int.from_bytes) if random else None

    def check(_collect: Callable[[], int] = gc.collect,
              _tags: Any = tags, _refs: Any = refs, _words: Any = _WORDS,
              _settings: Callable[[], tuple[Any, ...]] = settings, _modules: Any = modules,
              _sequences: Any = tuple(sequences), _raw: Any = _RAW, _id: Any = id,
              _at: int = _TUPLE_ITEMS_AT,
              _pristine: tuple[Any, ...] = pristine, _kept: Any = kept, _len: Any = len,
              _tuple: Any = tuple, _map: Any = map,
              _chain: Any = itertools.chain.from_iterable, _list: Any = list,
              _reseed: Any = reseed, _setrlimit: Any = resource.setrlimit,
              _limit: int = TAINT_RLIMIT, _match: Any = _settings_match,
              _same: Any = _same_items, _caches: tuple[Any, ...] = tuple(caches),
              _clear: Any = dict.clear, _flags: Any = flags, _type: Any = type,
              _storage: Any = storage, _contents: Any = contents,
              _modules_tag: int = modules_tag, _slots: Any = slots) -> bool:
        changed = True
        try:
            known = _pristine[5]
            if _len(_modules) > _len(known):  # (else the slice is empty: no list is made)
                for name in _list(_modules)[_len(known):]:  # imported by the task: dropped
                    del _modules[name]
            for cache in _caches:
                _clear(cache)
            if _flags is not None:
                context = _flags[0]()
                if _type(context) is _flags[1]:
                    _flags[2](context)
            _collect()
            # sys.modules untouched since the pristine reading (its tag, read after the
            # drops above): only the other sequences' items are compared one by one
            skip = _pristine[10] if _words[_modules_tag] == _pristine[9] else 0
            changed = not (
                _tags() == _pristine[0]
                and _refs() == _pristine[1]
                and _storage() == _pristine[7]
                and _contents() == _pristine[8]  # only where nothing moved
                and _slots() == _pristine[11]
                and _tuple(_map(_len, _sequences)) == _pristine[3]
                and _same(_tuple(_chain(_sequences[2:] if skip else _sequences)),
                          _pristine[4][skip:], _raw, _id, _at, _len)
                and _match(_settings(), _pristine[2])
            )
            if _reseed is not None:  # C state only: a new stream for the next task
                _reseed[0](_reseed[1], _reseed[3](_reseed[2](32), "big"))
        except BaseException:
            changed = True
        if changed:
            try:
                _setrlimit(_limit, (0, 0))
            except BaseException:
                pass
        return changed

    # the worker's own machinery is protected as the pristine objects are: the check, the
    # tripwire and what they read with (a snippet reaches them through frames, and a rewrite
    # of their code or defaults would disarm the check unseen)
    trip = _tripwire(plan.pristine_ids)
    machinery = (check, trip, tags, refs, settings, storage, contents, slots, plan.stamp)
    trip.__defaults__ = _with_default(trip, "_own", frozenset(map(id, machinery)))
    # what the survey and this made is kept for the worker's life: out of the collector's way
    # (a full collection after every task would otherwise walk it all again)
    gc.freeze()
    sys.addaudithook(trip)
    return check

