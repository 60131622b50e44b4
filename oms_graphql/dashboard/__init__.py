"""GET /dashboard: the main reports drawn as charts, from the GraphQL API (no CDN).

The page needs a staff token, checked as /graphql checks it: ``Authorization: Bearer …``
or, for a browser's address bar, ``?token=…`` (the page then drops it from the address
and sends it as a Bearer header to /graphql). Without one it answers 401 with a form
asking for a token. The assets under /dashboard/static are code, no data, and public.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from oms_graphql.config import Settings
from oms_graphql.db.engine import Database
from oms_graphql.domain.access import Role
from oms_graphql.domain.identities import AuthenticationFailed
from oms_graphql.schema.context import bearer, caller_for_token

STATIC = Path(__file__).parent / "static"
STAFF = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)

ASK_FOR_TOKEN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>OMS dashboard</title>
<link rel="stylesheet" href="/dashboard/static/dashboard.css"></head><body><main class="login">
<h1>OMS dashboard</h1><p>{message}</p>
<form method="get" action="/dashboard"><label>API token (staff) <input name="token" type="password" required></label>
<button type="submit">Open</button></form></main></body></html>"""


def dashboard_routes(database: Database, settings: Settings | None = None) -> list[Route | Mount]:
    async def dashboard(request: Request) -> Response:
        token = bearer(request.headers.get("authorization")) or request.query_params.get("token") or None
        try:
            caller = await caller_for_token(database, token, settings)
        except AuthenticationFailed as failure:
            return HTMLResponse(ASK_FOR_TOKEN.format(message=escape(failure.message)), status_code=401)
        if caller.role is None:
            return HTMLResponse(ASK_FOR_TOKEN.format(message="Sign in with an API token."), status_code=401)
        if caller.role not in STAFF:
            return HTMLResponse(ASK_FOR_TOKEN.format(message="Reports are for staff tokens."), status_code=403)
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    return [
        Route("/dashboard", dashboard, methods=["GET"]),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
