"""Campaigns in Redis: created with their audience, launched once per due run by beat's
tick, fanned out in chunks through the bulk lane with only ``queueAhead`` jobs in flight,
paused, resumed and cancelled down to jobs already queued (the claim reads the campaign's
state), and counted in a funnel per run.

A job's id is derived from (campaign, run, recipient), so fanning a chunk out twice
(a crash between enqueuing it and moving the cursor) queues nobody twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from dispatcher.campaigns.audience import Refused
from dispatcher.campaigns.checks import CampaignCheck
from dispatcher.campaigns.model import CampaignSpec
from dispatcher.campaigns.plan import plan_run
from dispatcher.errors import FieldProblem, InvalidRequest
from dispatcher.gateway.kinds import template_of
from dispatcher.job.envelope import JobEnvelope
from dispatcher.job.ids import derived_job_id, new_job_id
from dispatcher.job.options import JobOptions
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.templates import SENDABLE, STOPPED, same_template
from dispatcher.producer.api import Dispatcher

log = logging.getLogger("dispatcher.campaigns")

IN_FLIGHT = ("scheduled", "queued", "sending", "retry_wait")
UPLOAD_CHUNK = 5000
FAN_OUT_CHUNK = 1000


_key = schema.campaign


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Created:
    campaign_id: str
    recipients: int
    refused: list[Refused] = field(default_factory=list)
    next_run: datetime | None = None
    plan: dict[str, Any] | None = None  # the first run's plan (Plan.to_dict)


@dataclass(frozen=True)
class Row:
    """An audience row that can be sent: its line, its values, the number it goes from."""

    line: int
    values: dict[str, Any]
    number: str


@dataclass
class Preview:
    recipients: int = 0
    refused: list[Refused] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class Campaigns:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.client = dispatcher.ledger.client
        self.scripts = dispatcher.ledger.scripts

    # --- creating --------------------------------------------------------------------------

    def create(
        self,
        spec: CampaignSpec,
        audience: Iterable[tuple[int, dict[str, Any]] | Refused],
        now: datetime | None = None,
    ) -> Created:
        """Store the campaign and its audience; it launches when its schedule says."""
        now = now or datetime.now(UTC)
        checked = self._checked(spec, audience)  # refuses a spec before anything is stored
        campaign_id = "c" + new_job_id()[:23]
        key = _key(campaign_id)
        created = Created(campaign_id, 0)
        with store_errors():
            self.client.hset(
                key,
                mapping={
                    "id": campaign_id,
                    "def": spec.model_dump_json(by_alias=True),
                    "state": "uploading",
                    "run": 0,
                    "cursor": 0,
                    "total": 0,
                    "created": _ms(now),
                },
            )
            batch: list[str] = []
            settings = self.dispatcher.settings
            category = spec.expected_category()
            priced = settings.prices is not None  # else no estimate, and no cost per row
            estimate_micros, unpriced = 0, 0
            for row in checked:
                if isinstance(row, Refused):
                    created.refused.append(row)
                    continue
                values = row.values
                if priced:
                    price = settings.price_of(category, values["to"])
                    if price is None:
                        unpriced += 1
                    else:
                        estimate_micros += round(price * 1_000_000)
                batch.append(json.dumps(values, separators=(",", ":")))
                if len(batch) >= UPLOAD_CHUNK:
                    self.client.rpush(_key(campaign_id, "aud"), *batch)
                    created.recipients += len(batch)
                    batch = []
            if batch:
                self.client.rpush(_key(campaign_id, "aud"), *batch)
                created.recipients += len(batch)
            created.next_run = spec.schedule.first_run(now)
            state = "scheduled"
            next_ms = _ms(created.next_run)
            pipe = self.client.pipeline()
            fields: dict[str, str | int] = {
                "state": state,
                "total": created.recipients,
                "next_run": next_ms,
            }
            if priced:  # a run's estimate from PRICES, before anything is sent
                fields.update(estimate_micros=estimate_micros, unpriced=unpriced)
            pipe.hset(key, mapping=cast(Any, fields))
            pipe.zadd(schema.CAMPAIGNS, {campaign_id: _ms(now)})
            pipe.zadd(schema.CAMPAIGNS_DUE, {campaign_id: next_ms})
            pipe.execute()
        created.plan = self._plan(campaign_id, spec, created.next_run, now)
        return created

    def preview(
        self,
        spec: CampaignSpec,
        audience: Iterable[tuple[int, dict[str, Any]] | Refused],
        rows: int = 5,
    ) -> Preview:
        """What :meth:`create` would make of ``audience``, storing nothing: how many
        recipients, the refused rows by line, and the first ``rows`` sends as the gateway
        would get them (the message rendered for each row)."""
        checked = self._checked(spec, audience)
        found = Preview()
        for row in checked:
            if isinstance(row, Refused):
                found.refused.append(row)
                continue
            found.recipients += 1
            if len(found.rows) < rows:
                found.rows.append(row)
        return found

    def _checked(
        self, spec: CampaignSpec, audience: Iterable[tuple[int, dict[str, Any]] | Refused]
    ) -> Iterator[Row | Refused]:
        """The audience's rows, each a :class:`Row` to send (its number given in turn)
        or :class:`Refused` with its line and why. Refuses (InvalidRequest) at once a spec
        whose numbers are not configured or whose message cannot be sent whatever the
        rows hold, before a row is read."""
        unknown = [n for n in spec.numbers if n not in self.dispatcher.settings.from_numbers]
        if unknown:
            raise InvalidRequest(
                [
                    FieldProblem(
                        "fromPhoneNos",
                        f"{', '.join(unknown)} is not a number of any configured key",
                    )
                ]
            )
        check = CampaignCheck(spec)
        check.message()
        return self._rows(spec, check, audience)

    @staticmethod
    def _rows(
        spec: CampaignSpec,
        check: CampaignCheck,
        audience: Iterable[tuple[int, dict[str, Any]] | Refused],
    ) -> Iterator[Row | Refused]:
        accepted = 0
        for row in audience:
            if isinstance(row, Refused):
                yield row
                continue
            line, values = row
            number = spec.numbers[accepted % len(spec.numbers)]
            problem = check.row(values, number)
            if problem is not None:
                yield Refused(line, problem)
                continue
            accepted += 1
            yield Row(line, values, number)

    def _plan(
        self, campaign_id: str, spec: CampaignSpec, start: datetime, now: datetime
    ) -> dict[str, Any]:
        """Keep the run's plan (at create, and again at each launch, when the budget and
        the recipients reached may have changed)."""
        plan = plan_run(self.client, self.dispatcher.settings, campaign_id, spec, start, now)
        found = plan.to_dict()
        with store_errors():
            self.client.hset(_key(campaign_id), "plan", json.dumps(found))
        return found

    # --- reading -------------------------------------------------------------------------

    def spec(self, campaign_id: str) -> CampaignSpec:
        with store_errors():
            raw = cast(bytes | None, self.client.hget(_key(campaign_id), "def"))
        if raw is None:
            raise KeyError(campaign_id)
        return CampaignSpec.model_validate_json(raw)

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        with store_errors():
            raw = cast(dict[bytes, bytes], self.client.hgetall(_key(campaign_id)))
        if not raw:
            return None
        h = {k.decode(): v.decode() for k, v in raw.items()}
        run = int(h.get("run", "0"))
        spec = json.loads(h["def"])
        funnel = self.funnel(campaign_id, run) if run else {}
        # A cancelled campaign runs no more, whatever its schedule said.
        next_run = int(h.get("next_run") or 0) if h["state"] != "cancelled" else 0
        return {
            "id": campaign_id,
            "name": spec["name"],
            "state": h["state"],
            "reason": h.get("reason") or None,
            "run": run,
            "recipients": int(h["total"]),
            "fannedOut": int(h.get("cursor", "0")),
            "nextRun": datetime.fromtimestamp(next_run / 1000, UTC).isoformat()
            if next_run
            else None,
            "funnel": funnel,
            "estimatedCostPerRun": int(h["estimate_micros"]) / 1_000_000
            if "estimate_micros" in h
            else None,
            "unpricedRecipients": int(h.get("unpriced", "0")),
            "plan": json.loads(h["plan"]) if "plan" in h else None,
            "spec": spec,
        }

    def funnel(self, campaign_id: str, run: int) -> dict[str, int]:
        with store_errors():
            raw = cast(dict[bytes, bytes], self.client.hgetall(_key(campaign_id, f"f:{run}")))
        return {k.decode(): int(v) for k, v in raw.items() if int(v)}

    def recent(self) -> list[dict[str, Any]]:
        with store_errors():
            ids = cast(list[bytes], self.client.zrevrange(schema.CAMPAIGNS, 0, 199))
        return [c for c in (self.get(i.decode()) for i in ids) if c is not None]

    def report(self, campaign_id: str, run: int | None = None) -> Iterator[dict[str, Any]]:
        """One row per recipient of a run: to, job id, state, wamid, error."""
        info = self.get(campaign_id)
        if info is None:
            raise KeyError(campaign_id)
        run = run or info["run"]
        start = 0
        while True:
            with store_errors():
                rows = cast(
                    list[bytes], self.client.lrange(_key(campaign_id, "aud"), start, start + 999)
                )
                if not rows:
                    return
                pipe = self.client.pipeline(transaction=False)
                tos = [json.loads(r)["to"] for r in rows]
                for to in tos:
                    pipe.hmget(
                        schema.job(derived_job_id(campaign_id, str(run), to)),
                        "state",
                        "wamid",
                        "err_code",
                        "err_msg",
                    )
                found = pipe.execute()
            for to, (state, wamid, code, message) in zip(tos, found, strict=True):
                yield {
                    "to": to,
                    "jobId": derived_job_id(campaign_id, str(run), to),
                    "state": state.decode() if state else "pending",
                    "wamid": wamid.decode() if wamid else "",
                    "errorCode": code.decode() if code else "",
                    "error": message.decode() if message else "",
                }
            start += len(rows)

    # --- control ---------------------------------------------------------------------------

    def pause(self, campaign_id: str, reason: str = "paused by hand") -> bool:
        """Stop sending within a tick: queued jobs are held at their claim, not lost."""
        with store_errors():
            state = cast(bytes | None, self.client.hget(_key(campaign_id), "state"))
            if state not in (b"running", b"scheduled"):
                return False
            self.client.hset(_key(campaign_id), mapping={"state": "paused", "reason": reason})
        return True

    def resume(self, campaign_id: str) -> bool:
        with store_errors():
            raw = cast(list[bytes | None], self.client.hmget(_key(campaign_id), "state", "run"))
            if raw[0] != b"paused":
                return False
            state = "running" if int(raw[1] or 0) else "scheduled"
            self.client.hset(_key(campaign_id), mapping={"state": state, "reason": ""})
            self._release_held(campaign_id)
        return True

    def cancel(self, campaign_id: str) -> bool:
        """What is not sent yet ends ``cancelled`` (queued jobs at their claim)."""
        with store_errors():
            state = cast(bytes | None, self.client.hget(_key(campaign_id), "state"))
            if state in (None, b"cancelled", b"done"):
                return False
            self.client.hset(_key(campaign_id), "state", "cancelled")
            self.client.zrem(schema.CAMPAIGNS_DUE, campaign_id)
            self._release_held(campaign_id)
            if not self.client.sismember(schema.CAMPAIGNS_RUNNING, campaign_id):
                self._expire(campaign_id)  # nothing to wind down: kept for the retention
        return True

    def _expire(self, campaign_id: str) -> None:
        """A campaign that will not run again is kept (record, audience, funnels) for
        the retention of its jobs, then goes with them."""
        run = int(cast(bytes, self.client.hget(_key(campaign_id), "run") or b"0"))
        ttl_s = self.dispatcher.settings.job_retention_s
        pipe = self.client.pipeline()
        parts = ("aud", "held", *(f"f:{n}" for n in range(1, run + 1)))
        for key in (_key(campaign_id), *(_key(campaign_id, part) for part in parts)):
            pipe.expire(key, ttl_s)
        pipe.execute()

    def pause_for_number(self, number: str, reason: str) -> list[str]:
        """Pause the running campaigns that send from ``number`` (Meta's spam limit)."""
        paused = []
        with store_errors():
            running = cast(set[bytes], self.client.smembers(schema.CAMPAIGNS_RUNNING))
        for raw in running:
            campaign_id = raw.decode()
            if number in self.spec(campaign_id).numbers and self.pause(campaign_id, reason):
                paused.append(campaign_id)
        return paused

    def template_changed(self, name: str, language: str, status: str, reason: str) -> list[str]:
        """Meta changed a template's status: a stopped one (paused, disabled, rejected)
        pauses the live campaigns that send it, their queued jobs held at their claim
        (not attempts); an approved one resumes the campaigns it paused. Returns the
        campaigns paused or resumed."""
        tag = f"template {name} ({language or 'any language'})"
        with store_errors():
            ids = [
                raw.decode()
                for raw in cast(list[bytes], self.client.zrange(schema.CAMPAIGNS, 0, -1))
            ]
            pipe = self.client.pipeline(transaction=False)
            for campaign_id in ids:
                pipe.hmget(_key(campaign_id), "state", "reason", "def")
            found = cast(list[list[bytes | None]], pipe.execute())
        touched = []
        for campaign_id, (state, why, spec) in zip(ids, found, strict=True):
            if status in STOPPED and state in (b"running", b"scheduled") and spec:
                message = CampaignSpec.model_validate_json(spec).message
                if _sends_template(message, name, language):
                    said = f"{tag} is {status}" + (f": {reason}" if reason else "")
                    touched += [campaign_id] if self.pause(campaign_id, said) else []
            elif (
                status in SENDABLE
                and state == b"paused"
                and (why or b"").decode().startswith(tag + " is ")
            ):
                touched += [campaign_id] if self.resume(campaign_id) else []
        if touched:
            log.warning("%s is %s: campaigns %s", tag, status, ", ".join(touched))
        return touched

    def _release_held(self, campaign_id: str) -> None:
        held = cast(set[bytes], self.client.smembers(_key(campaign_id, "held")))
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline()
        for job_id in held:
            pipe.zadd(schema.TIMERS, {job_id: now_ms}, xx=True)
        pipe.delete(_key(campaign_id, "held"))
        pipe.execute()

    # --- the tick --------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        """Launch due runs; fan running ones out; finish runs that are done."""
        now = now or datetime.now(UTC)
        done = {"launched": 0, "queued": 0}
        with store_errors():
            due = cast(
                list[tuple[bytes, float]],
                self.client.zrangebyscore(schema.CAMPAIGNS_DUE, "-inf", _ms(now), withscores=True),
            )
        for raw, score in due:
            campaign_id = raw.decode()
            spec = self.spec(campaign_id)
            following = spec.schedule.next_run(now)
            run = self.scripts.call(
                "camp_launch", _ms(now), campaign_id, int(score), _ms(following) if following else 0
            )
            if int(run) > 0:
                done["launched"] += 1
                self._plan(campaign_id, spec, now, now)
        with store_errors():
            running = cast(set[bytes], self.client.smembers(schema.CAMPAIGNS_RUNNING))
        for raw in running:
            done["queued"] += self._advance(raw.decode(), now)
        return done

    def _advance(self, campaign_id: str, now: datetime) -> int:
        key = _key(campaign_id)
        with store_errors():
            raw = cast(
                list[bytes | None],
                self.client.hmget(key, "state", "run", "cursor", "total", "reason"),
            )
        state = (raw[0] or b"").decode()
        run, cursor, total = int(raw[1] or 0), int(raw[2] or 0), int(raw[3] or 0)
        spec = self.spec(campaign_id)
        if state == "cancelled":
            return self._finish_run(campaign_id, spec, run, cursor, total, now, cancelled=True)
        if spec.expires_at is not None and now >= spec.expires_at:
            self.cancel(campaign_id)
            return 0
        inside = spec.window is None or spec.window.contains(now, spec.schedule.timezone)
        if state == "running" and not inside:
            self.pause(campaign_id, "outside the send window")
            return 0
        if state == "paused":
            if inside and (raw[4] or b"").decode() == "outside the send window":
                self.resume(campaign_id)
            return 0
        if state != "running":
            return 0
        funnel = self.funnel(campaign_id, run)
        in_flight = sum(funnel.get(s, 0) for s in IN_FLIGHT)
        room = spec.queue_ahead - in_flight
        if cursor >= total:
            if in_flight == 0:
                self._finish_run(campaign_id, spec, run, cursor, total, now)
            return 0
        queued = 0
        options = JobOptions.of(lane="bulk", campaign_id=campaign_id, expires_at=spec.expires_at)
        while room > 0 and cursor < total:  # chunk by chunk: memory follows the chunk
            take = min(room, FAN_OUT_CHUNK)
            with store_errors():
                rows = cast(
                    list[bytes],
                    self.client.lrange(_key(campaign_id, "aud"), cursor, cursor + take - 1),
                )
            if not rows:
                break
            envelopes = []
            for offset, raw_row in enumerate(rows):
                envelope = self._envelope(
                    campaign_id, spec, run, options, cursor + offset, json.loads(raw_row)
                )
                if envelope is not None:
                    envelopes.append(envelope)
            self.dispatcher.ledger.enqueue(envelopes, mode="batch", run=run)
            cursor += len(rows)
            with store_errors():
                self.client.hset(key, "cursor", cursor)
            queued += len(envelopes)
            room -= len(rows)
        return queued

    def _envelope(
        self,
        campaign_id: str,
        spec: CampaignSpec,
        run: int,
        options: JobOptions,
        index: int,
        row: dict[str, Any],
    ) -> JobEnvelope | None:
        """The row's job (``options``: the campaign's, the same for every row), or None
        when it cannot be sent: then it is recorded ``failed`` with the reason (rows are
        checked at upload, so this means the configuration or the time changed since: an
        unbound number, an ``expiresAt`` passed)."""
        number = spec.numbers[index % len(spec.numbers)]
        job_id = derived_job_id(campaign_id, str(run), row["to"])
        try:
            envelope = self.dispatcher.prepare(
                spec.message.channel,
                spec.message.type,
                spec.send_for(row, number),
                options,
                job_id=job_id,
            )
        except InvalidRequest as exc:
            reason = f"refused at fan-out: {exc}"
        except KeyError as exc:
            reason = f"refused at fan-out: variable {exc.args[0]} is missing"
        else:
            if spec.throttle_per_s:
                envelope = envelope.model_copy(update={"campaign_rate": spec.throttle_per_s})
            return envelope
        log.warning(
            "campaign %s row %d not sent: %s",
            campaign_id,
            index,
            reason,
            extra={"job": job_id, "campaign": campaign_id, "number": number},
        )
        self.dispatcher.ledger.refuse(
            job_id,
            to=row["to"],
            from_phone_no=number,
            campaign_id=campaign_id,
            run=run,
            channel=spec.message.channel,
            message_type=spec.message.type,
            reason=reason,
        )
        return None

    def _finish_run(
        self,
        campaign_id: str,
        spec: CampaignSpec,
        run: int,
        cursor: int,
        total: int,
        now: datetime,
        cancelled: bool = False,
    ) -> int:
        key = _key(campaign_id)
        following = None if cancelled else spec.schedule.next_run(now)
        with store_errors():
            pipe = self.client.pipeline()
            pipe.srem(schema.CAMPAIGNS_RUNNING, campaign_id)
            if cancelled:
                if total > cursor:
                    pipe.hincrby(_key(campaign_id, f"f:{run}"), "cancelled", total - cursor)
                pipe.hset(key, "cursor", total)
            elif following is None:
                pipe.hset(key, "state", "done")
            else:
                pipe.hset(key, mapping={"state": "scheduled", "next_run": _ms(following)})
                pipe.zadd(schema.CAMPAIGNS_DUE, {campaign_id: _ms(following)})
                # This run's funnel goes with its jobs; the next run counts in its own.
                pipe.expire(_key(campaign_id, f"f:{run}"), self.dispatcher.settings.job_retention_s)
            pipe.xadd(
                schema.EVENTS,
                {"job": "", "state": "campaign_finished", "camp": campaign_id, "run": run},
                maxlen=self.dispatcher.settings.events_maxlen,
                approximate=True,
            )
            pipe.execute()
            if following is None:
                self._expire(campaign_id)  # it will not run again
        return 0


def _sends_template(message: Any, name: str, language: str) -> bool:
    """Whether a campaign's message sends template ``name`` in ``language`` (alone or in
    a combined send)."""
    sent = template_of(message.channel, message.type, message.body)
    return sent is not None and same_template((name, language), sent)
