"""Helpers for the tests, by concern: ``processes`` (redis-server, the sandbox), ``stack``
(the dispatcher from real parts), ``receiver`` (a loopback HTTP server that records
posts) and ``sentry`` (what sentry-sdk posted), ``cli`` (the command as a person runs
it), ``waiting`` (conditions, a clock), ``data`` (keys, tokens, a campaign). Fixtures
that build them live in ``tests/conftest.py``."""
