"""Outbound HTTP to Git hosts: the only package that speaks HTTP to them (and imports httpcore).

addresses.py   IP addresses in every spelling; which ones are not public
hostnames.py   a host a user typed, parsed and normalised (ParsedHost)
allowlist.py   GIT_HOST_ALLOWLIST, parsed once for settings and guard
guard.py       HostGuard: the one decision which hosts may be contacted
transport.py   the guarded network backend, transport and client
client.py      HostHTTP and Upstream: retries, rate limits, error mapping
pagination.py  Paginator: every page walk (Link headers, ETags)
accounting.py  upstream requests of the current request (budgets go here)
"""
