"""The gateway's endpoints under ``/api/v1/external``, answered as the reference says.

Order of checks per call, as the real gateway does it: faults (in the middleware), auth
(401), quota (429), service and permission (403), body validation (400), number binding
(403), Meta's own refusals (400 with ``(#code)``), then the send is accepted.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from dispatcher.errors import InvalidRequest
from dispatcher.gateway.cloud import TemplatePayload
from dispatcher.gateway.combined import COMBINED_PAYLOADS, CombinedSend
from dispatcher.gateway.contacts import (
    ContactFields,
    UpdateContact,
    UpsertContact,
    contact_digits,
)
from dispatcher.gateway.kinds import CLOUD_KINDS, QR_KINDS
from dispatcher.gateway.permissions import contact_refusal, send_refusal
from dispatcher.gateway.qr import QrSend
from dispatcher.gateway.validation import parse
from dispatcher.sandbox import replies
from dispatcher.sandbox.config import SandboxKey, SandboxQrSession
from dispatcher.sandbox.instance import SANDBOX_KEY, Sandbox
from dispatcher.sandbox.replies import fail, meta_error, ok

INTERACTIVE = frozenset({"buttons", "list", "cta", "flow"})

# The gateway's API, as the reference lists it (served under /api/v1/external).
ROUTES = web.RouteTableDef()


def authenticate(sb: Sandbox, request: web.Request) -> SandboxKey:
    """The key of the call, or a 401 with the reference's exact bodies."""
    key_id = request.headers.get("X-API-Key")
    bearer = request.headers.get("Authorization", "")
    if not key_id and bearer.lower().startswith("bearer "):
        key_id = bearer[7:].strip()
    if not key_id:
        raise fail(401, message=replies.MISSING_KEY)
    key = sb.keys.get(key_id)
    if key is None:
        raise fail(401, message=replies.INVALID_KEY)
    if key.secret is not None:
        secret = request.headers.get("X-API-Secret")
        if not secret:
            raise fail(401, message=replies.MISSING_SECRET)
        if not hmac.compare_digest(secret.encode(), key.secret.encode()):
            raise fail(401, message=replies.INVALID_SECRET)
    return key


def charge_quota(sb: Sandbox, key: SandboxKey) -> None:
    over = sb.state.take_quota(key, sb.now())
    if over is not None:
        wait_s, which = over
        sb.state.counters["quota_429"] += 1
        raise fail(
            429, message=f"Rate limit exceeded: {which} for this API key", retry_after_s=wait_s
        )


def require_send(key: SandboxKey) -> None:
    refusal = send_refusal(key.permissions, combined=False)
    if refusal is not None:
        raise fail(403, message=refusal)


def require_service(key: SandboxKey, service: str) -> None:
    if service not in key.services:
        raise fail(
            403,
            message=replies.QR_NOT_AUTHORIZED if service == "qr" else replies.CLOUD_NOT_AUTHORIZED,
        )


async def json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise meta_error(100, "Request body must be valid JSON") from None


def validated(model: type[Any], body: Any, *, meta: bool = True) -> Any:
    """The parsed body, or 400: Meta's ``(#100)`` for sends, plain text for contacts."""
    try:
        return parse(model, body)
    except InvalidRequest as exc:
        text = "; ".join(str(p) for p in exc.problems)
        raise (meta_error(100, text) if meta else fail(400, error=text)) from None


def _digits(number: str) -> str:
    return number.lstrip("+")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- ping ---------------------------------------------------------------------------------


@ROUTES.get("/ping")
async def ping(request: web.Request) -> web.Response:
    key: SandboxKey = request["key"]
    return web.json_response(
        {"success": True, "pong": True, "vendorId": key.vendor_id, "apiKeyName": key.name}
    )


# --- Cloud sends --------------------------------------------------------------------------


def _check_template(sb: Sandbox, template: TemplatePayload) -> None:
    known = sb.templates.get((template.name, template.language))
    if known is None:
        raise meta_error(132001)
    given: dict[str, int] = {}
    for component in template.components or ():
        given[component.type] = given.get(component.type, 0) + len(component.parameters)
    for component_type, expected in known.params.items():
        if given.get(component_type, 0) != expected:
            raise meta_error(132000)


M = TypeVar("M")


def _send_context(
    request: web.Request, service: str, kinds: Mapping[str, M]
) -> tuple[Sandbox, SandboxKey, str, M]:
    """The sandbox, the caller's key, the path's kind and its request model, once the key
    may send on ``service``."""
    key: SandboxKey = request["key"]
    kind = request.match_info["kind"]
    require_service(key, service)
    require_send(key)
    model = kinds.get(kind)
    if model is None:
        prefix = "whatsapp-api" if service == "cloud" else "whatsapp-qr"
        raise fail(404, error=f"Cannot POST /{prefix}/messages/{kind}")
    return request.app[SANDBOX_KEY], key, kind, model


@ROUTES.post("/whatsapp-api/messages/{kind}")
async def cloud_send(request: web.Request) -> web.Response:
    sb, key, kind, model = _send_context(request, "cloud", CLOUD_KINDS)
    body = await json_body(request)
    if model is CombinedSend:
        if not isinstance(body, dict) or body.get("type") not in COMBINED_PAYLOADS:
            raw = body.get("type") if isinstance(body, dict) else None
            raise fail(400, error=f"Unsupported type '{raw}'")
        refusal = send_refusal(key.permissions, combined=True)
        if refusal is not None:
            raise fail(403, error=refusal)
    message = validated(model, body)
    sender, to = message.from_phone_no, message.to
    if sender not in key.numbers:
        raise fail(403, error=f"fromPhoneNo {sender} is not bound to this API key")
    forced = sb.config.faults.recipient_errors.get(to)
    if forced is not None:
        raise meta_error(forced)
    message_type = message.type if isinstance(message, CombinedSend) else kind
    if message_type == "template":
        template = (
            TemplatePayload.model_validate(message.payload)
            if isinstance(message, CombinedSend)
            else message
        )
        _check_template(sb, template)
    elif sb.config.enforce_window and not sb.state.window_open(sender, to, sb.now()):
        raise meta_error(131047)
    delivered = True
    tier = sb.config.messaging_tier
    if tier is not None and not sb.state.window_open(sender, to, sb.now()):
        # Business-initiated: Meta's messaging limit applies, and going over it has no
        # error code: the send is accepted and never delivered.
        delivered = sb.state.reach(key.vendor_id, to, sb.now(), tier)
        if not delivered:
            sb.state.counters["undelivered_messaging_limit"] += 1

    wamid = sb.state.new_wamid()
    sb.state.record(
        {
            "wamid": wamid,
            "channel": "cloud",
            "key": key.key,
            "from": sender,
            "to": to,
            "type": message_type,
            "endpoint": kind,
            "body": body,
            "received": request.get("received_at"),
            **({} if delivered else {"undelivered": "messaging limit"}),
        }
    )
    contact = None
    if isinstance(message, CombinedSend) and message.contact and not message.contact.is_empty():
        contact = sb.upsert_contact(key.vendor_id, _digits(to), message.contact)
    await sb.schedule_statuses(key, sender, to, wamid, message_type, delivered=delivered)
    result: dict[str, Any] = {"messageId": wamid, "status": "sent"}
    if message_type not in ("image", "video", "audio", "sticker", "document"):
        result["to"] = _digits(to)
    result["type"] = "interactive" if message_type in INTERACTIVE else message_type
    if kind == "template":
        result["id"] = sb.state.new_object_id()
        result["timestamp"] = _now_iso()
    if isinstance(message, CombinedSend):
        return ok({"contact": contact, "message": result})
    return ok(result)


# --- QR sends -----------------------------------------------------------------------------


def _qr_session(sb: Sandbox, key: SandboxKey, message: QrSend) -> SandboxQrSession:
    for session in sb.config.qr_sessions:
        if session.vendor_id != key.vendor_id or session.status != "connected":
            continue
        if message.session_id is not None:
            if session.session_id == message.session_id:
                return session
        elif session.phone_number == message.from_phone_no:
            return session
    raise fail(400, error=replies.NO_QR_SESSION)


@ROUTES.post("/whatsapp-qr/messages/{kind}")
async def qr_send(request: web.Request) -> web.Response:
    sb, key, kind, model = _send_context(request, "qr", QR_KINDS)
    body = await json_body(request)
    message = validated(model, body)
    session = _qr_session(sb, key, message)
    message_id = sb.state.new_qr_id()
    sb.state.record(
        {
            "wamid": message_id,
            "channel": "qr",
            "key": key.key,
            "from": session.phone_number,
            "session": session.session_id,
            "to": message.to,
            "type": kind,
            "endpoint": kind,
            "body": body,
            "received": request.get("received_at"),
        }
    )
    data: dict[str, Any] = {"messageId": message_id, "sessionId": session.session_id}
    if kind == "text":
        data = {
            "messageId": message_id,
            "from": _digits(session.phone_number),
            "sessionId": session.session_id,
            "to": f"{_digits(message.to)}@s.whatsapp.net",
        }
    data["type"] = kind
    return ok(data)


@ROUTES.get("/whatsapp-qr/sessions")
async def qr_sessions(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SANDBOX_KEY]
    key: SandboxKey = request["key"]
    require_service(key, "qr")
    if "messages.read" not in key.permissions:
        raise fail(403, message="API key needs 'messages.read'")
    sessions = [
        {
            "sessionId": s.session_id,
            "sessionName": s.session_name,
            "phoneNumber": _digits(s.phone_number),
            "status": s.status,
        }
        for s in sb.config.qr_sessions
        if s.vendor_id == key.vendor_id
    ]
    return ok(sessions, count=len(sessions))


# --- contacts -----------------------------------------------------------------------------


@ROUTES.patch("/contacts")
@ROUTES.post("/contacts")
async def contacts(request: web.Request) -> web.Response:
    sb: Sandbox = request.app[SANDBOX_KEY]
    key: SandboxKey = request["key"]
    refusal = contact_refusal(key.permissions)
    if refusal is not None:
        raise fail(403, error=refusal)
    body = await json_body(request)
    if request.method == "PATCH":
        update = validated(UpdateContact, body, meta=False)
        phone = contact_digits(update.phone_number, update.country_code)
        if (key.vendor_id, phone) not in sb.state.contacts:
            raise fail(404, error="Contact not found")
        return ok(sb.upsert_contact(key.vendor_id, phone, update.updates))
    upsert = validated(UpsertContact, body, meta=False)
    phone = contact_digits(upsert.phone_number, upsert.country_code)
    fields = ContactFields.model_validate(
        upsert.model_dump(include=set(ContactFields.model_fields))
    )
    return ok(sb.upsert_contact(key.vendor_id, phone, fields))
