"""The programs: the CLI, the daemon (`sandbox serve`) and the host check."""
