"""``make demo``: the service with a fake GitHub and a fake GitLab on loopback, for frontend developers.

Test code in spirit, like the fakes it runs (``tests/fakes``): nothing in ``app/`` imports it, the
production image does not contain it (``Dockerfile`` copies ``app/`` only; ``.dockerignore``), and
``APP_ENV=production`` refuses any answer of a fake (``app.net.transports.RefuseFakeHosts``).
``runner`` starts everything, ``world`` is the seeded world and its cheat sheet (``CASES``), ``seeding``
prepares the cases that need history through the API, ``page`` is the stand-in frontend (``returnTo``,
GraphiQL with the header filled), ``sheet`` prints.
"""
