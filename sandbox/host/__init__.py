"""The host side of the jails: the pool core and its worker, the one poll loop per process,
and the fronts that drive them (the runner of a broker, the local API)."""
