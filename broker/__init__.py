"""The ZeroMQ broker: a pure routing and queueing core (``core``), one protocol module
(``protocol``) and a thin socket loop around them (``server``)."""
