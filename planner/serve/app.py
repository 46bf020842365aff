"""The HTTP side of ``planner serve``: a Starlette app with one page and a JSON API.

Safe by default: the server binds to the loopback address and answers only requests whose
``Host`` is that address (a web page elsewhere cannot rebind a name to it). Bound to another
address, every request needs the session's token (``X-Planner-Token`` header, or ``?token=``
on the page's address). Changes are POSTs of JSON (``Content-Type: application/json``,
which a cross-site form cannot send). A refused input answers HTTP 400 with the one line
the command line prints for it.

Routes
------
``GET /`` the page; ``GET /api/state``; ``GET /api/times?category=KEY``;
``GET /api/isochrone?category=KEY`` (the target circle, GeoJSON);
``POST /api/edits`` (an edit, see :mod:`planner.serve.state`); ``POST /api/undo``;
``GET /api/scenarios``; ``POST /api/scenarios/save|load|compare|export`` (``name``; ``a``
and ``b``); ``POST /api/propose`` (``category``, ``new``, ``standards``, ``model``).
"""

from __future__ import annotations

import ipaddress
import json
import secrets

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from planner._errors import InputError
from planner.serve.page import page_html
from planner.serve.session import Session

TOKEN_HEADER = "X-Planner-Token"
#: Largest request body read (bytes): an edit or a scenario name is far smaller.
_MAX_BODY = 1_000_000


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def create_app(session: Session, host: str = "127.0.0.1", token: str | None = None) -> Starlette:
    """The app serving ``session``.

    Parameters
    ----------
    session : Session
    host : str
        The address the server binds to. A loopback address accepts only loopback ``Host``
        headers; any other needs ``token``.
    token : str, optional
        Required on every request when given (always, for a non-loopback ``host``).

    Raises
    ------
    InputError
        A non-loopback ``host`` without a token.
    """
    if not is_loopback(host) and not token:
        raise InputError(f"--host {host}: serving beyond this computer needs a token; planner serve makes it")

    def guard(handler):
        async def endpoint(request: Request) -> Response:
            if token is not None:
                given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
                if not secrets.compare_digest(given.encode(), token.encode()):
                    return _error(403, "token missing or wrong: open the address planner serve printed")
            try:
                return await handler(request)
            except InputError as err:
                return _error(400, str(err))

        return endpoint

    hosts = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else ["*"]
    app = Starlette(
        routes=_routes(session, guard), middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    )
    app.state.session = session
    return app


def _routes(session: Session, guard) -> list[Route]:
    """The page and the API, each handler wrapped by ``guard`` (token and refusals)."""

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html(session.engine.region.name), headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return JSONResponse(session.state())

    async def times(request: Request) -> Response:
        return JSONResponse(session.times(request.query_params.get("category", "")))

    async def isochrone(request: Request) -> Response:
        return JSONResponse(session.isochrone(request.query_params.get("category", "")))

    async def edits(request: Request) -> Response:
        return JSONResponse(session.edit(await _body(request)))

    async def undo(request: Request) -> Response:
        await _body(request)
        return JSONResponse(session.undo())

    async def scenarios(request: Request) -> Response:
        return JSONResponse({"scenarios": session.folder.names(), "current": session.name})

    async def scenario_action(request: Request) -> Response:
        body = await _body(request)
        action = request.path_params["action"]
        if action == "compare":
            return JSONResponse(session.compare(_field(body, "a"), _field(body, "b")))
        actions = {"save": session.save, "load": session.load, "export": session.export}
        if action not in actions:
            raise InputError(f"request: no scenario action {action[:40]!r}; use save, load, compare, export")
        return JSONResponse(actions[action](_field(body, "name")))

    async def propose(request: Request) -> Response:
        body = await _body(request)
        standards, model = body.get("standards", True), body.get("model", "mclp")
        return JSONResponse(session.propose(_field(body, "category"), body.get("new", 1), standards, model))

    return [
        Route("/", guard(page)),
        Route("/favicon.ico", lambda request: Response(status_code=204)),  # no icon, and no 404 logged
        Route("/api/state", guard(state)),
        Route("/api/times", guard(times)),
        Route("/api/isochrone", guard(isochrone)),
        Route("/api/edits", guard(edits), methods=["POST"]),
        Route("/api/undo", guard(undo), methods=["POST"]),
        Route("/api/scenarios", guard(scenarios)),
        Route("/api/scenarios/{action:str}", guard(scenario_action), methods=["POST"]),
        Route("/api/propose", guard(propose), methods=["POST"]),
    ]


def _error(status: int, message: str) -> JSONResponse:
    from planner.cli._common import one_line

    return JSONResponse({"error": one_line(message)}, status_code=status)


async def _body(request: Request) -> dict:
    """The request's JSON object, or InputError."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InputError("request: send JSON with Content-Type: application/json")
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise InputError(f"request: body of {len(raw)} bytes is over {_MAX_BODY}; send one edit at a time")
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"request: not valid JSON ({err})") from None
    if not isinstance(body, dict):
        raise InputError("request: send a JSON object")
    return body


def _field(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f'request: {key!r} is missing; give it as text, e.g. {{"{key}": "..."}}')
    return value
