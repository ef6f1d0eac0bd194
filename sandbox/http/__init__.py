"""The HTTP/JSON API of ``sandbox serve``: mapping (requests and answers as values, pure),
keys (bearer keys to principals), openapi (its document), app (the Starlette routes), server
(uvicorn in the daemon, tasks through ``AsyncClient`` to the broker)."""
