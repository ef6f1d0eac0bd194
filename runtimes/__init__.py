"""Code that runs inside the jail: the zygote, the per-task child and the executors.

Nothing here imports from ``sandbox``, ``broker`` or ``seccomp``: the jail mounts only this
package (and msgpack), and what runs in it must not depend on the host side. The host side
imports two modules from here, because they define what crosses the jail wall: ``codec``
(the value encoding rules) and ``wire`` (framing, task and result envelopes, statuses).
"""
