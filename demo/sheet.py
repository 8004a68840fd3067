"""The cheat sheet: in the terminal (``text``) and on the demo page (``html``), from the same ``CASES``."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from demo.world import CASES, GITHUB_CLIENT_ID, GITLAB_CLIENT_ID


@dataclass(frozen=True)
class Addresses:
    service: str
    page: str
    github: str
    gitlab: str
    log: str


def text(addresses: Addresses, jwts: dict[str, str]) -> str:
    """What ``make demo`` prints once everything runs."""
    lines = [
        "",
        "Git integrations demo — nothing here talks to github.com or gitlab.com",
        "",
        f"  Demo page (start here)  {addresses.page}/",
        f"  GraphiQL, header filled {addresses.page}/graphiql   (pick the user on the demo page)",
        f"  The service             {addresses.service}/graphql   (log: {addresses.log})",
        f"  Fake GitHub             {addresses.github}   (GitHub App demo-deploy-app, client {GITHUB_CLIENT_ID})",
        f"  Fake GitLab             {addresses.gitlab}   (application {GITLAB_CLIENT_ID})",
        "",
        "  Platform users (JWTs signed with this run's AUTH_JWT_SECRET, valid 12 hours):",
    ]
    lines += [f"    {user:<9} {jwt}" for user, jwt in jwts.items()]
    lines += ["", "  What each case shows (connect tokens with connectGitToken; host empty):"]
    for case in CASES:
        lines.append(f"  * [{case.host}] {case.key} — as {case.user}: {case.use}")
        if case.token:
            lines.append(f"      token  {case.token}")
        lines.append(f"      shows  {case.shows}")
    lines += ["", "  Ctrl-C stops everything (the database is thrown away).", ""]
    return "\n".join(lines)


def html(addresses: Addresses, jwts: dict[str, str]) -> str:
    """The demo page: the cheat sheet, the login buttons, the push button, GraphiQL."""
    users = "".join(f'<option value="{escape(u)}">{escape(u)}</option>' for u in jwts)
    rows = "".join(
        "<tr>"
        f"<td>{escape(case.host)}</td><td><code>{escape(case.key)}</code></td><td>{escape(case.user)}</td>"
        f"<td>{escape(case.use)}"
        + (f'<br><code class="token">{escape(case.token)}</code>' if case.token else "")
        + f"</td><td>{escape(case.shows)}</td></tr>"
        for case in CASES
    )
    tokens = "".join(
        f'<tr><td>{escape(user)}</td><td><code class="jwt">{escape(jwt)}</code></td></tr>'
        for user, jwt in jwts.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Git integrations demo</title>
<link rel="stylesheet" href="/static/demo/demo.css"></head>
<body>
<h1>Git integrations demo</h1>
<p>The service at <code>{escape(addresses.service)}</code> with a fake GitHub
(<code>{escape(addresses.github)}</code>) and a fake GitLab (<code>{escape(addresses.gitlab)}</code>).
Nothing here talks to github.com or gitlab.com.</p>
<section>
<p><label>Act as platform user <select id="user">{users}</select></label>
<button id="connect-github" data-provider="GITHUB">Connect with GitHub</button>
<button id="connect-gitlab" data-provider="GITLAB">Connect with GitLab</button>
<button id="graphiql">Open GraphiQL as this user</button>
<button id="push">Push to every linked repository</button></p>
<p id="status" role="status"></p>
</section>
<h2>Cheat sheet</h2>
<table><thead><tr><th>host</th><th>case</th><th>as</th><th>do</th><th>shows</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>JWTs of this run</h2>
<p>Send <code>Authorization: Bearer &lt;JWT&gt;</code>. <code>deployer</code> is a platform service
(<code>scope: git:deploy</code>) acting for lena: it reads her link's events.</p>
<table><tbody>{tokens}</tbody></table>
<script src="/static/demo/common.js"></script>
<script src="/static/demo/demo.js"></script>
</body></html>"""
