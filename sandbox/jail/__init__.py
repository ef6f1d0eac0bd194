"""Starting a jail: nsjail's argv and mounts, namespaces, cgroups, the stdlib view, the
packages mounted inside, and a fake launcher that passes the same contract tests."""
