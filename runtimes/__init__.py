"""Code that runs inside the jail: the zygote, the per-task child and the executors.

Nothing here imports from ``sandbox``, ``broker`` or ``seccomp``: the jail mounts only this
package (and msgpack), and what runs in it must not depend on the host side. The host side
imports what defines the jail wall: ``codec`` (the value encoding rules), ``framing`` (frames,
the control channel, ``WireError``), ``protocol`` (the typed control messages and the task)
and ``outcome`` (statuses and the result envelope).
"""
