"""Fake GitHub and GitLab servers (Starlette apps with in-memory state) and a way to run them on loopback.

- ``tests.fakes.github.FakeGitHub`` / ``tests.fakes.gitlab.FakeGitLab``: ``.app`` is the ASGI app.
- ``tests.fakes.server.run_in_thread(app)``: serve an app on 127.0.0.1 from a background thread.
- ``python -m tests.fakes github|gitlab --port N``: serve a seeded fake as its own process.
"""
