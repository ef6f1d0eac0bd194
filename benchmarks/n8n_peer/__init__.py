"""A real n8n 2.41.1 as a peer: installed into a per-machine cache (``install``), started
headless and driven over its REST API and push channel (``peer``), its executions' "flatted"
encoding read (``flatted``). The n8n benchmark and the end-to-end tests both use it."""
