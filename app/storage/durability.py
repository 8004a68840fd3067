"""What an acknowledged write is promised, named once: every collection is reached with one of these.

``Database.collection(name, durability)`` (``storage.mongo``) hands out a collection whose writes carry
the level's write concern, and the client's own default is ``MUST_SURVIVE``, so a write that was not
given a level is durable too. A new kind of stored data picks its level where it opens its collection:

- ``MUST_SURVIVE`` — ``{w: "majority", j: true}``: acknowledged means kept. The write is in the
  journal (on disk) of a majority of the replica set's members before the server answers, so neither a
  crash of any process nor a failover (a new primary elected) takes it back. On a standalone server
  ``"majority"`` is that one server (MongoDB accepts it there, unlike ``w: 2``) and ``j`` makes it wait
  for its journal. Integrations (connect, update, verify, status), refreshed tokens and refresh leases,
  OAuth states, repository links and received webhook events.
- ``REBUILDABLE`` — ``{w: 1}``: the primary applied it; a crash or a failover may lose it. Only for data
  that is fetched again from a Git host when it is missing: the repository cache.

The embedded server (SecantusDB) additionally runs with ``--sync-on-commit``, which makes every commit
wait for its log to reach the disk, whatever the write concern (docs/reliability.md, "Durability").
A write that waits for a majority longer than the client's socket timeout fails with
``SERVICE_UNAVAILABLE``: not acknowledged, so nothing was promised (it may still have been applied,
and every write here can be repeated).
"""

from __future__ import annotations

from enum import Enum

from pymongo.write_concern import WriteConcern


class Durability(Enum):
    """How much of a crash or a failover an acknowledged write of a collection survives."""

    MUST_SURVIVE = "must survive"
    REBUILDABLE = "rebuildable"

    @property
    def write_concern(self) -> WriteConcern:
        if self is Durability.MUST_SURVIVE:
            return WriteConcern(w="majority", j=True)
        return WriteConcern(w=1)


__all__ = ["Durability"]
