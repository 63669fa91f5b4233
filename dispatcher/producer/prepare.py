"""A job checked against the configuration and made into its envelope.

The request is validated as the gateway would (``dispatcher.gateway``), the options by
their model (``dispatcher.job.options``); what only the configuration can say is checked
here: that the sending number belongs to a configured key and channel, that ``expiresAt``
is still ahead. A job without ``expiresAt`` gets its lane's maximum age.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from config import ApiKeyConfig, Settings, normalize_e164
from dispatcher.errors import FieldProblem, InvalidRequest, NotPermitted
from dispatcher.gateway import SendRequest, parse_send
from dispatcher.gateway.combined import CombinedSend
from dispatcher.gateway.contacts import contact_digits
from dispatcher.gateway.kinds import parse_contact
from dispatcher.gateway.permissions import contact_refusal, send_refusal
from dispatcher.job.envelope import OPTION_NAMES, Channel, JobEnvelope, envelope_for
from dispatcher.job.ids import new_job_id
from dispatcher.job.options import NO_OPTIONS, JobOptions
from dispatcher.job.queues import Lane


class JobPreparer:
    """Turns (channel, type, body, options) into a JobEnvelope, or InvalidRequest."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._channels = {n: settings.channels_of(n) for n in settings.from_numbers}
        self._scopes = {route: key.scopes for route, key in settings.senders().items()}
        self._qr_by_session = any("qr" in k.channels for k in settings.keys)
        self._keys = settings.keys
        self._key_for_number = settings.key_for_number
        self._max_age_s: dict[Lane, float] = {
            "transactional": settings.max_age_transactional_s,
            "bulk": settings.max_age_bulk_s,
        }

    def prepare(
        self,
        channel: str,
        message_type: str,
        body: Mapping[str, Any],
        options: JobOptions = NO_OPTIONS,
        *,
        default_lane: Lane = "transactional",
        job_id: str | None = None,
    ) -> JobEnvelope:
        if channel == "contacts":
            return self._prepare_contact(message_type, body, options, default_lane, job_id)
        request = parse_send(channel, message_type, dict(body))
        problems = self._number_problems(channel, request.from_phone_no)
        if not problems:
            self._check_scopes(channel, request)
        now = self.clock()
        if options.expires_at is not None and options.expires_at.timestamp() <= now:
            problems.append(FieldProblem("expiresAt", "must be in the future"))
        if problems:
            raise InvalidRequest(problems)
        lane = options.lane or default_lane
        options = self._aged(options, lane, now)
        return envelope_for(
            job_id or new_job_id(int(now * 1000)),
            request,
            channel=cast(Channel, channel),  # parse_send accepted it
            message_type=message_type,
            options=options,
            lane=lane,
        )

    def _aged(self, options: JobOptions, lane: Lane, now: float) -> JobOptions:
        """The options with the lane's maximum age as ``expiresAt`` when none is given."""
        max_age_s = self._max_age_s[lane]
        if options.expires_at is None and max_age_s > 0:
            expires_at = datetime.fromtimestamp(now + max_age_s, UTC)
            options = options.model_copy(update={"expires_at": expires_at})
        return options

    def _prepare_contact(
        self,
        kind: str,
        body: Mapping[str, Any],
        options: JobOptions,
        default_lane: Lane,
        job_id: str | None,
    ) -> JobEnvelope:
        """A contact write (``update``: PATCH /contacts, ``upsert``: POST /contacts) as a
        job. ``fromPhoneNo`` (optional, not sent) picks the key, as for a send; without
        it, the first key that may write contacts. The job goes through the queue of the
        key's ``contacts_number``."""
        given = dict(body)
        number = given.pop("fromPhoneNo", None)
        request = parse_contact(kind, given)
        problems: list[FieldProblem] = []
        key = self._contacts_key(number, problems)
        now = self.clock()
        if options.expires_at is not None and options.expires_at.timestamp() <= now:
            problems.append(FieldProblem("expiresAt", "must be in the future"))
        digits = contact_digits(request.phone_number, request.country_code)
        try:
            to = normalize_e164("+" + digits)
        except ValueError as exc:
            problems.append(FieldProblem("phoneNumber", str(exc)))
        if problems:
            raise InvalidRequest(problems)
        assert key is not None
        refusal = contact_refusal(key.scopes)
        if refusal is not None:
            raise NotPermitted(refusal)
        lane = options.lane or default_lane
        options = self._aged(options, lane, now)
        return JobEnvelope(
            **{name: getattr(options, name) for name in OPTION_NAMES},
            id=job_id or new_job_id(int(now * 1000)),
            channel="contacts",
            type=kind,
            to=to,
            from_phone_no=key.contacts_number,
            payload=request.to_gateway(),
            lane=lane,
        )

    def _contacts_key(self, number: Any, problems: list[FieldProblem]) -> ApiKeyConfig | None:
        if number is None:  # the first key that may write contacts (else: refused by scope)
            writers = [k for k in self._keys if "contacts.write" in k.scopes]
            if not self._keys:
                problems.append(FieldProblem("fromPhoneNo", "no gateway key is configured"))
            return next(iter(writers or self._keys), None)
        try:
            return self._key_for_number(str(number))
        except (KeyError, ValueError):
            problems.append(FieldProblem("fromPhoneNo", "is not a number of any configured key"))
            return None

    def _check_scopes(self, channel: str, request: SendRequest) -> None:
        """The permissions the reference lists for the endpoint, on the key that sends
        from the number (a QR job chosen by session alone is checked by the gateway)."""
        number = request.from_phone_no
        if number is None:
            return
        scopes = self._scopes[(number, channel)]
        refusal = send_refusal(scopes, combined=isinstance(request, CombinedSend))
        if refusal is not None:
            raise NotPermitted(refusal)

    def _number_problems(self, channel: str, number: str | None) -> list[FieldProblem]:
        if number is None:
            if self._qr_by_session:
                return []
            return [
                FieldProblem(
                    "sessionId", "needs a configured key with the qr channel; or give fromPhoneNo"
                )
            ]
        if number not in self._channels:
            return [FieldProblem("fromPhoneNo", "is not a number of any configured key")]
        if channel not in self._channels[number]:
            return [FieldProblem("fromPhoneNo", f"is not configured for the {channel} channel")]
        return []
