"""``/_sandbox``: what tests and benchmarks use to steer and read the sandbox."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.phone import normalize_e164
from dispatcher.gateway.validation import problems_of
from dispatcher.sandbox.config import Faults, Webhooks
from dispatcher.sandbox.instance import SANDBOX_KEY, Sandbox

# The sandbox's own control endpoints (/_sandbox/...): faults, webhooks, inspection.
ROUTES = web.RouteTableDef()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InboundRequest(_Strict):
    from_: str = Field(alias="from")
    to: str
    text: str | None = None
    button_id: str | None = Field(default=None, alias="buttonId")
    button_title: str | None = Field(default=None, alias="buttonTitle")
    context_id: str | None = Field(default=None, alias="contextId")
    name: str = "Sandbox Customer"


class StatusRequest(_Strict):
    wamid: str
    status: str = Field(pattern=r"^(sent|delivered|read|failed)$")
    code: int | None = None
    title: str | None = None


class ClockRequest(_Strict):
    advance_s: float = Field(gt=0, le=366 * 86_400)


class WebhookConfigRequest(Webhooks):
    url: str | None = None
    key: str | None = None


def _bad(exc: ValidationError | ValueError) -> web.Response:
    errors = [str(p) for p in problems_of(exc)] if isinstance(exc, ValidationError) else [str(exc)]
    return web.json_response({"success": False, "error": "; ".join(errors)}, status=400)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json() if request.can_read_body else {}
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None


def _sb(request: web.Request) -> Sandbox:
    sandbox: Sandbox = request.app[SANDBOX_KEY]
    return sandbox


@ROUTES.get("/_sandbox/sent")
async def sent(request: web.Request) -> web.Response:
    """``GET /_sandbox/sent?since=N&limit=M``: every accepted send, oldest first."""
    sb = _sb(request)
    since = int(request.query.get("since", "0"))
    limit = request.query.get("limit")
    items = sb.state.sent[since:] if limit is None else sb.state.sent[since : since + int(limit)]
    return web.json_response({"count": len(sb.state.sent), "items": items})


@ROUTES.get("/_sandbox/faults")
async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(_sb(request).config.faults.model_dump())


@ROUTES.post("/_sandbox/faults")
async def set_faults(request: web.Request) -> web.Response:
    """``POST /_sandbox/faults``: change some faults; fields left out keep their value."""
    sb = _sb(request)
    try:
        merged = Faults.model_validate({**sb.config.faults.model_dump(), **await _json(request)})
    except ValidationError as exc:
        return _bad(exc)
    sb.config.faults = merged
    return web.json_response(merged.model_dump())


@ROUTES.post("/_sandbox/webhooks")
async def set_webhooks(request: web.Request) -> web.Response:
    """``POST /_sandbox/webhooks``: the URL (for one key or all) and how deliveries go."""
    sb = _sb(request)
    data = await _json(request)
    try:
        merged = WebhookConfigRequest.model_validate({**sb.config.webhooks.model_dump(), **data})
    except ValidationError as exc:
        return _bad(exc)
    sb.config.webhooks = Webhooks.model_validate(merged.model_dump(exclude={"url", "key"}))
    if "url" in data:
        for key in sb.config.keys:
            if merged.key in (None, key.key, key.name):
                key.webhook_url = merged.url
    return web.json_response({"ok": True})


@ROUTES.post("/_sandbox/reset")
async def reset(request: web.Request) -> web.Response:
    _sb(request).reset()
    return web.json_response({"ok": True})


@ROUTES.post("/_sandbox/inbound")
async def inbound(request: web.Request) -> web.Response:
    """``POST /_sandbox/inbound``: a customer message; opens the 24-hour window."""
    sb = _sb(request)
    try:
        req = InboundRequest.model_validate(await _json(request))
        customer, ours = normalize_e164(req.from_), normalize_e164(req.to)
    except (ValidationError, ValueError) as exc:
        return _bad(exc)
    wamid = sb.inbound(
        customer,
        ours,
        sb.now(),
        text=req.text,
        button_id=req.button_id,
        button_title=req.button_title,
        context_id=req.context_id,
        name=req.name,
    )
    return web.json_response({"ok": True, "id": wamid})


@ROUTES.post("/_sandbox/status")
async def emit_status(request: web.Request) -> web.Response:
    """``POST /_sandbox/status``: post a status webhook for a wamid the sandbox issued."""
    sb = _sb(request)
    try:
        req = StatusRequest.model_validate(await _json(request))
    except ValidationError as exc:
        return _bad(exc)
    if not sb.emit_status(req.wamid, req.status, req.code, req.title):
        return web.json_response(
            {"success": False, "error": "unknown wamid or no webhook URL"}, status=404
        )
    return web.json_response({"ok": True})


@ROUTES.post("/_sandbox/clock")
async def advance_clock(request: web.Request) -> web.Response:
    """``POST /_sandbox/clock {"advance_s": 86400}``: move the sandbox's clock forward
    (windows, quotas, the messaging limit), as if that much time had passed."""
    sb = _sb(request)
    try:
        req = ClockRequest.model_validate(await _json(request))
    except ValidationError as exc:
        return _bad(exc)
    sb.clock_offset_s += req.advance_s
    return web.json_response({"ok": True, "offset_s": sb.clock_offset_s})


@ROUTES.get("/_sandbox/stats")
async def stats(request: web.Request) -> web.Response:
    sb = _sb(request)
    return web.json_response(
        {
            "sent": len(sb.state.sent),
            "counters": dict(sb.state.counters),
            "webhooks_posted": sb.sender.posted,
            "webhooks_failed": sb.sender.failed,
        }
    )


@ROUTES.get("/_sandbox/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})
