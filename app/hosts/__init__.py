"""The Git hosts, one package each behind one protocol (``base.GitHost``).

base.py       GitHost (what services may ask of any host) and Listing
registry.py   HostRegistry: endpoint → GitHost, configured hosts, logins
oauth.py      the OAuth 2 authorization server both hosts' logins share
parsing.py    what both hosts answer alike (timestamps, branches)
github/       github.com and GitHub Enterprise Server
gitlab/       gitlab.com and self-managed GitLab
"""
