"""The fake GitLab's REST API (``/api/v4``): tokens, users, projects, groups, branches."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from tests.fakes._gitlab_deploy import DeployEndpoints
from tests.fakes._gitlab_models import DEVELOPER, GUEST, MAINTAINER, GitLabGroup, GitLabProject, GitLabToken
from tests.fakes._http import Call, Handler, Router, conditional, iso, json_response, link_header, page_params

if TYPE_CHECKING:
    from tests.fakes.gitlab import FakeGitLab

ApiHandler = Callable[[Call, GitLabToken], Response]
API = "/api/v4"
READ_API = frozenset({"api", "read_api"})
READ_USER = frozenset({"api", "read_api", "read_user"})
MAX_COUNTED = 10_000  # above this GitLab stops counting: no x-total, x-total-pages or rel="last"
_PAGINATION_HEADERS = (
    "Link",
    "x-page",
    "x-per-page",
    "x-next-page",
    "x-prev-page",
    "x-total",
    "x-total-pages",
)


def gitlab_error(status: int, message: str) -> Response:
    return json_response({"message": message}, status)


def unknown_route() -> Response:
    """What GitLab answers for a route it does not have (lib/api/api.rb: ``error!('404 Not Found', 404)``)."""
    return json_response({"error": "404 Not Found"}, 404)


def credentials(call: Call) -> str | None:
    """``PRIVATE-TOKEN``, ``Authorization: Bearer`` or the ``private_token`` / ``access_token`` parameters."""
    if call.headers.get("private-token"):
        return call.headers["private-token"].strip()
    scheme, _, value = call.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return call.query.get("private_token") or call.query.get("access_token")


def paginate(
    call: Call, items: list[Any], *, default_per_page: int = 20, count_limit: int = MAX_COUNTED
) -> tuple[list[Any], dict[str, str]]:
    """Offset pagination with GitLab's headers; Link relations in GitLab's order: prev, next, first, last."""
    page = page_params(call, len(items), default_per_page=default_per_page)
    counted = page.total <= count_limit
    has_next = page.number * page.per_page < page.total
    headers = {
        "x-page": str(page.number),
        "x-per-page": str(page.per_page),
        "x-next-page": str(page.number + 1) if has_next else "",
        "x-prev-page": str(page.number - 1) if page.number > 1 else "",
    }
    rels: list[tuple[str, int]] = []
    if page.number > 1:
        rels.append(("prev", page.number - 1))
    if has_next:
        rels.append(("next", page.number + 1))
    rels.append(("first", 1))
    if counted:
        rels.append(("last", page.last))
        headers["x-total"] = str(page.total)
        headers["x-total-pages"] = str(page.last)
    headers["Link"] = link_header(call, rels)
    return page.slice(items), headers


def flag(call: Call, name: str) -> bool | None:
    value = call.query.get(name)
    return None if value is None else value.lower() in ("true", "1", "yes")


def int_param(call: Call, name: str) -> int | None:
    value = call.query.get(name, "")
    return int(value) if value.lstrip("-").isdigit() else None


class GitLabAPI:
    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake

    def register(self, router: Router) -> None:
        add = router.add
        add("GET", f"{API}/version", self.api(self.get_version, READ_USER))
        add("GET", f"{API}/user", self.api(self.get_user, READ_USER))
        # Routes newer instances have: an older one answers them as unknown, before any authentication.
        fake = self.fake
        add(
            "GET",
            f"{API}/personal_access_tokens/self",
            self.since(lambda: not fake.version_below_15_5, self.api(self.token_self, None)),
        )
        add(
            "GET",
            f"{API}/personal_access_tokens/self/associations",
            self.since(
                lambda: not (fake.version_below_17_4 or fake.version_below_15_5),
                self.api(self.token_associations, READ_API),
            ),
        )
        add("GET", f"{API}/projects", self.api(self.list_projects, READ_API, listing_projects=True))
        add("GET", f"{API}/projects/{{id}}", self.api(self.get_project, READ_API))
        add("GET", f"{API}/projects/{{id}}/repository/branches", self.api(self.list_branches, READ_API))
        add(
            "GET",
            f"{API}/projects/{{id}}/repository/branches/{{branch}}",
            self.api(self.get_branch, READ_API),
        )
        add("GET", f"{API}/groups", self.api(self.list_groups, READ_API))
        add("GET", f"{API}/groups/{{id}}", self.api(self.get_group, READ_API))
        add("GET", f"{API}/groups/{{id}}/projects", self.api(self.group_projects, READ_API))
        DeployEndpoints(self.fake).register(router, self.api)

    # --- envelope --------------------------------------------------------------------------------

    @staticmethod
    def since(present: Callable[[], bool], handler: Handler) -> Handler:
        """``handler`` on an instance that has the route, else GitLab's catch-all 404."""

        def routed(call: Call) -> Response:
            return handler(call) if present() else unknown_route()

        return routed

    def api(self, handler: ApiHandler, scopes: frozenset[str] | None, *, listing_projects: bool = False) -> Handler:
        def wrapped(call: Call) -> Response:
            fake = self.fake
            if fake.rate_limited():
                return self._throttled()
            raw = credentials(call)
            token = fake.valid_token(raw) if raw else None
            if token is None:
                response = gitlab_error(401, "401 Unauthorized")
            elif scopes is not None and not scopes & set(token.scopes):
                response = json_response(
                    {
                        "error": "insufficient_scope",
                        "error_description": "The request requires higher privileges than provided by the access token.",
                        "scope": " ".join(sorted(scopes)),
                    },
                    403,
                )
            elif listing_projects and (wait := fake.projects_list_wait(token.user_id)) is not None:
                allowed = str(fake.projects_list_limit[0]) if fake.projects_list_limit else "0"
                headers = {
                    "Retry-After": str(wait),
                    "RateLimit-Name": "projects_api_rate_limit",
                    "RateLimit-Limit": allowed,
                    "RateLimit-Observed": allowed,
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(int(fake.now()) + wait),
                }
                return Response("Retry later\n", 429, headers, media_type="text/plain")
            else:
                token.last_used_at = fake.now()
                known = token
                response = fake.kept_answer(known.value, call, lambda: handler(call, known))
            response = conditional(call, response, weak=True, keep_headers=_PAGINATION_HEADERS)
            if fake.rate_limit_remaining is not None:
                fake.rate_limit_remaining -= 1
                response.headers.update(self._rate_headers())
            return response

        return wrapped

    def _rate_headers(self) -> dict[str, str]:
        fake = self.fake
        remaining = max(0, fake.rate_limit_remaining or 0)
        reset = int(fake.now()) + fake.retry_after
        return {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(fake.rate_limit_limit),
            "RateLimit-Observed": str(max(0, fake.rate_limit_limit - remaining)),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }

    def _throttled(self) -> Response:
        headers = {"Retry-After": str(self.fake.retry_after), **self._rate_headers()}
        return Response("Retry later\n", 429, headers, media_type="text/plain")

    def bases(self, call: Call) -> tuple[str, str]:
        root = call.root_url()
        return root, f"{root}{API}"

    # --- tokens and users ------------------------------------------------------------------------

    def get_version(self, call: Call, token: GitLabToken) -> Response:
        fake = self.fake
        version = (
            "15.4.6-ee"
            if fake.version_below_15_5
            else "17.3.7-ee"
            if fake.version_below_17_4
            else fake.version
        )
        return json_response(
            {"version": version, "revision": "f4k3f4k3", "kas": {"enabled": False}, "enterprise": True}
        )

    def get_user(self, call: Call, token: GitLabToken) -> Response:
        web, _ = self.bases(call)
        return json_response(self.fake.users[token.user_id].render(web))

    def token_self(self, call: Call, token: GitLabToken) -> Response:
        if token.kind == "oauth":
            # [unverified] how GitLab answers an OAuth token here; the fake says "not a personal token".
            return gitlab_error(404, "404 Not Found")
        return json_response(token.render_self())

    def token_associations(self, call: Call, token: GitLabToken) -> Response:
        fake = self.fake
        minimum = int_param(call, "min_access_level") or GUEST
        web, _ = self.bases(call)
        groups = []
        for group in fake.groups.values():
            level = fake.group_level(token.user_id, group)
            if level is not None and level >= minimum:
                groups.append(
                    {
                        "id": group.id,
                        "web_url": f"{web}/groups/{group.full_path}",
                        "name": group.name,
                        "parent_id": group.parent.id if group.parent else None,
                        "organization_id": 1,
                        "access_levels": level,
                        "visibility": group.visibility,
                    }
                )
        projects = []
        for project in fake.projects.values():
            direct, inherited, effective = fake.project_levels(token.user_id, project)
            if effective is not None and effective >= minimum:
                projects.append(
                    {
                        "id": project.id,
                        "description": project.description,
                        "name": project.name,
                        "name_with_namespace": project.name_with_namespace,
                        "path": project.path,
                        "path_with_namespace": project.path_with_namespace,
                        "created_at": iso(project.created_at, millis=True),
                        "access_levels": {"project_access_level": direct, "group_access_level": inherited},
                        "visibility": project.visibility,
                        "web_url": f"{web}/{project.path_with_namespace}",
                        "namespace": project.render_namespace(web),
                    }
                )
        # [unverified] how the endpoint pages two lists at once: the fake pages both with the same
        # page/per_page and describes the longer one in the headers.
        longest = groups if len(groups) >= len(projects) else projects
        _, headers = paginate(call, longest)
        body = {"groups": paginate(call, groups)[0], "projects": paginate(call, projects)[0]}
        return json_response(body, headers=headers)

    # --- projects --------------------------------------------------------------------------------

    def list_projects(self, call: Call, token: GitLabToken) -> Response:
        fake = self.fake

        def candidates() -> list[GitLabProject]:
            visible = [p for p in fake.projects.values() if fake.can_see(token.user_id, p)]
            if flag(call, "owned"):
                visible = [
                    p
                    for p in visible
                    if getattr(p.namespace, "id", None) == token.user_id
                    and not isinstance(p.namespace, GitLabGroup)
                ]
            return visible

        return self._project_list(call, token, candidates)

    def _project_list(
        self, call: Call, token: GitLabToken, candidates_of: Callable[[], list[GitLabProject]]
    ) -> Response:
        fake = self.fake
        # The filtered, sorted list depends on the token's user, the path and the filters, not on which
        # page: with ``fast_lists`` it is computed once per state of the world (tens of thousands of
        # projects would otherwise be filtered again for every page).
        unpaged = tuple(
            sorted(
                (k, v) for k, v in call.query.multi_items() if k not in ("page", "per_page", "id_after", "id_before")
            )
        )
        key = (token.user_id, call.request.url.path, unpaged)
        cached = fake.list_index.get(key) if fake.fast_lists else None
        if cached is None:
            found = self._filtered(call, token, candidates_of())
            if isinstance(found, Response):
                return found
            cached = found
            if fake.fast_lists:
                fake.list_index[key] = cached
        return self._page_of_projects(call, token, cached)

    def _filtered(
        self, call: Call, token: GitLabToken, candidates: list[GitLabProject]
    ) -> list[GitLabProject] | Response:
        fake = self.fake
        minimum = int_param(call, "min_access_level")
        if flag(call, "membership") and minimum is None:
            minimum = GUEST
        if minimum is not None:
            candidates = [p for p in candidates if (fake.project_levels(token.user_id, p)[2] or 0) >= minimum]
        archived = flag(call, "archived")
        if archived is not None:
            candidates = [p for p in candidates if p.archived == archived]
        if call.query.get("visibility"):
            candidates = [p for p in candidates if p.visibility == call.query["visibility"]]
        search = call.query.get("search", "").lower()
        if search:
            in_namespace = flag(call, "search_namespaces")
            candidates = [
                p
                for p in candidates
                if search in p.name.lower()
                or search in p.path.lower()
                or (in_namespace and search in p.path_with_namespace.lower())
            ]
        # "order_by: Return projects ordered by id, name, path, created_at, updated_at, star_count,
        # last_activity_at, or similarity fields. Default is created_at"; "sort: ... asc or desc order.
        # Default is desc" (docs.gitlab.com/api/projects, "List all projects").
        order_by = call.query.get("order_by", "created_at")
        keys: dict[str, Callable[[GitLabProject], Any]] = {
            "id": lambda p: p.id,
            "name": lambda p: (p.name.lower(), p.id),
            "path": lambda p: (p.path.lower(), p.id),
            "created_at": lambda p: (p.created_at, p.id),
            "updated_at": lambda p: (p.last_activity_at, p.id),
            "last_activity_at": lambda p: (p.last_activity_at, p.id),
            "similarity": lambda p: (p.name.lower(), p.id),
        }
        if order_by not in keys:
            return json_response({"error": "order_by does not have a valid value"}, 400)
        descending = call.query.get("sort", "desc").lower() != "asc"
        candidates.sort(key=keys[order_by], reverse=descending)
        return candidates

    def _page_of_projects(self, call: Call, token: GitLabToken, candidates: list[GitLabProject]) -> Response:
        fake = self.fake
        order_by = call.query.get("order_by", "created_at")
        descending = call.query.get("sort", "desc").lower() != "asc"
        if call.query.get("pagination") == "keyset":
            if order_by != "id":
                # Keyset pages of projects exist only for order_by=id (REST docs, "Keyset-based
                # pagination", supported resources: "Projects: order_by=id only"); otherwise
                # lib/api/helpers/pagination_strategies.rb answers error!(..., 405).
                return json_response({"error": "Keyset pagination is not yet available for this type of request"}, 405)
            page_items, headers = self._keyset(call, candidates, descending)
        else:
            requested = page_params(call, len(candidates), default_per_page=20)
            if requested.number * requested.per_page > fake.max_offset:
                # gitlab.com refuses offset pages of projects past 50,000 records (docs.gitlab.com,
                # administration/instance_limits, "Max offset allowed by the REST API for offset-based
                # pagination"); the answer, quoted from gitlab-org/gitlab!214356 (page 2501 x 20):
                return json_response(
                    {
                        "error": f"Offset pagination has a maximum allowed offset of {fake.max_offset} for "
                        "requests that return objects of type Project. Remaining records can be retrieved "
                        "using keyset pagination."
                    },
                    400,
                )
            page_items, headers = paginate(call, candidates, count_limit=fake.count_limit)
        web, api = self.bases(call)
        if flag(call, "simple"):
            body = [p.render_simple(web) for p in page_items]
        elif fake.compact_projects:
            body = [p.render_compact(web, self._permissions(token.user_id, p)) for p in page_items]
        else:
            body = [p.render(web, api, self._permissions(token.user_id, p)) for p in page_items]
        return json_response(body, headers=headers)

    def _keyset(
        self, call: Call, items: list[GitLabProject], descending: bool
    ) -> tuple[list[GitLabProject], dict[str, str]]:
        after, before = int_param(call, "id_after"), int_param(call, "id_before")
        if after is not None and not descending:
            items = items[bisect.bisect_right(items, after, key=lambda p: p.id) :]  # sorted by id
        elif after is not None:
            items = [p for p in items if p.id > after]
        if before is not None:
            items = [p for p in items if p.id < before]
        per_page = page_params(call, len(items), default_per_page=20).per_page
        page = items[:per_page]
        # Keyset answers carry no x-total / x-per-page (gitlab-org/gitlab#220903), only Link next,
        # which names the next page by ``id_after`` (``id_before`` when descending), as in GitLab's
        # REST docs, "Keyset-based pagination": <…/projects?pagination=keyset&per_page=50&order_by=id
        # &sort=asc&id_after=42>; rel="next".
        headers: dict[str, str] = {}
        if len(items) > per_page:
            cursor = {"id_before": page[-1].id} if descending else {"id_after": page[-1].id}
            headers["Link"] = f'<{call.url_with(**cursor)}>; rel="next"'
        return page, headers

    def _permissions(self, user_id: int, project: GitLabProject) -> dict[str, Any]:
        direct, group, _ = self.fake.project_levels(user_id, project)
        return {
            "project_access": {"access_level": direct, "notification_level": 3} if direct else None,
            "group_access": {"access_level": group, "notification_level": 3} if group else None,
        }

    def _visible_project(self, call: Call, token: GitLabToken) -> GitLabProject | None:
        project = self.fake.find_project(call.params["id"])
        if project is None or not self.fake.can_see(token.user_id, project):
            return None
        return project

    def get_project(self, call: Call, token: GitLabToken) -> Response:
        project = self._visible_project(call, token)
        if project is None:
            return gitlab_error(404, "404 Project Not Found")
        web, api = self.bases(call)
        return json_response(project.render(web, api, self._permissions(token.user_id, project)))

    def list_branches(self, call: Call, token: GitLabToken) -> Response:
        project = self._visible_project(call, token)
        if project is None:
            return gitlab_error(404, "404 Project Not Found")
        branches = sorted(project.branches.values(), key=lambda b: b.name)
        search = call.query.get("search", "")
        # GitLab's BranchesFinder (app/finders/branches_finder.rb, by_search): "^term" keeps names
        # starting with term, "term$" names ending with it, anything else names containing it; all
        # compared upper-cased, i.e. case-insensitively. The API docs: "Use ^term to find branches
        # that begin with term, and term$ to find branches that end with term."
        if search.startswith("^"):
            wanted = search[1:].upper()
            branches = [b for b in branches if b.name.upper().startswith(wanted)]
        elif search.endswith("$"):
            wanted = search[:-1].upper()
            branches = [b for b in branches if b.name.upper().endswith(wanted)]
        elif search:
            branches = [b for b in branches if search.upper() in b.name.upper()]
        page, headers = paginate(call, branches)
        level = self.fake.project_levels(token.user_id, project)[2] or 0
        web, _ = self.bases(call)
        body = [
            project.render_branch(web, b, level >= (MAINTAINER if b.protected else DEVELOPER)) for b in page
        ]
        return json_response(body, headers=headers)

    def get_branch(self, call: Call, token: GitLabToken) -> Response:
        project = self._visible_project(call, token)
        if project is None:
            return gitlab_error(404, "404 Project Not Found")
        branch = project.branches.get(call.params["branch"])
        if branch is None:
            return gitlab_error(404, "404 Branch Not Found")
        level = self.fake.project_levels(token.user_id, project)[2] or 0
        web, _ = self.bases(call)
        return json_response(
            project.render_branch(web, branch, level >= (MAINTAINER if branch.protected else DEVELOPER))
        )

    # --- groups ----------------------------------------------------------------------------------

    def list_groups(self, call: Call, token: GitLabToken) -> Response:
        fake = self.fake
        minimum = int_param(call, "min_access_level")
        all_available = flag(call, "all_available")
        found = []
        for group in fake.groups.values():
            level = fake.group_level(token.user_id, group)
            if minimum is not None:
                keep = level is not None and level >= minimum
            else:
                keep = level is not None or (bool(all_available) and group.visibility != "private")
            if keep:
                found.append(group)
        search = call.query.get("search", "").lower()
        if search:
            found = [g for g in found if search in g.name.lower() or search in g.path.lower()]
        found.sort(key=lambda g: (g.full_name.lower(), g.id), reverse=call.query.get("sort") == "desc")
        page, headers = paginate(call, found)
        web, _ = self.bases(call)
        return json_response([g.render(web) for g in page], headers=headers)

    def _visible_group(self, call: Call, token: GitLabToken) -> GitLabGroup | None:
        group = self.fake.find_group(call.params["id"])
        if group is None:
            return None
        if group.visibility == "private" and self.fake.group_level(token.user_id, group) is None:
            return None
        return group

    def get_group(self, call: Call, token: GitLabToken) -> Response:
        group = self._visible_group(call, token)
        if group is None:
            return gitlab_error(404, "404 Group Not Found")
        web, _ = self.bases(call)
        return json_response(group.render(web))

    def group_projects(self, call: Call, token: GitLabToken) -> Response:
        fake = self.fake
        group = self._visible_group(call, token)
        if group is None:
            return gitlab_error(404, "404 Group Not Found")
        subgroups = flag(call, "include_subgroups")
        with_shared = flag(call, "with_shared") is not False

        def candidates() -> list[GitLabProject]:
            found = []
            for project in fake.projects.values():
                ns = project.namespace
                inside = isinstance(ns, GitLabGroup) and (
                    ns is group or (bool(subgroups) and group in ns.lineage())
                )
                shared = with_shared and group.id in project.shared_with
                if (inside or shared) and fake.can_see(token.user_id, project):
                    found.append(project)
            return found

        return self._project_list(call, token, candidates)
