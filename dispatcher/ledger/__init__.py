"""The job ledger in Redis: the key schema (``schema``), the Lua scripts that move jobs
forward atomically (``lua/``, loaded by ``scripts``), the Celery message they publish
(``message``), the ledger's Python face (``jobs``), and the records read back
(``records``)."""
