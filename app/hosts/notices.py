"""Notices both hosts give about a listing (``AccessNotice``): what may be missing from it and why.

Host-specific notices (GitHub's SAML SSO) are built in the host's package; a walk that was cut short
reads the same on every host.
"""

from __future__ import annotations

from app.domain.models import AccessNotice, AccessNoticeReason


def list_incomplete(host_name: str, listed: int, *, host_searches: bool) -> AccessNotice:
    """The walk of the host's list stopped early: ``listed`` repositories were read, more exist.

    ``host_searches``: a search is sent to the host, so it still finds what the list left out.
    """
    hint = " Search by name to find the others." if host_searches else ""
    return AccessNotice(
        reason=AccessNoticeReason.LIST_INCOMPLETE,
        message=(
            f"Only the first {listed:,} repositories {host_name} listed are shown: the list is "
            f"longer than this service reads.{hint}"
        ),
    )
