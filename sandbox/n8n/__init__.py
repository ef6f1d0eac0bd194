"""A drop-in external task runner for n8n 2.x: n8n's Code nodes run in our jails.

``protocol`` (the messages), ``core`` (the pure runner), ``python_node`` and
``javascript_node`` (Code node semantics, as wrapper snippets), ``task`` (jobs and how our
outcomes read in n8n), ``backend`` (the port to the pools), ``shell`` (the poll loop and
WebSocket), ``config`` and ``cli`` (``sandbox n8n-runner``).
"""
