"""The ledger's two languages agree: the Lua scripts and Python build every key alike,
name the same states, and the Celery message the scripts write is the one Celery's own
``send_task`` would publish, as kombu decodes it."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
import redis
from celery.app.task import Context
from kombu import Connection

from dispatcher.job.queues import queue_name
from dispatcher.ledger import schema, states
from dispatcher.producer.api import Dispatcher
from tests.support.stack import make_settings

FROM, TO = "+15550000001", "+15551230001"


def run_with_prelude(client: redis.Redis, body: str, *args: Any) -> Any:
    """Evaluate ``body`` after the scripts' prelude, with the common arguments."""
    prelude = (resources.files("dispatcher.ledger") / "lua" / "prelude.lua").read_text()
    common = [schema.PREFIX, 0, 100, 60]
    return client.eval(f"{prelude}\nbegin(ARGV)\n{body}", 0, *common, *args)


def test_lua_and_python_build_every_key_alike(redis_client: redis.Redis) -> None:
    constants = [
        "EVENTS",
        "TIMERS",
        "RECENT",
        "STATS",
        "WORKERS",
        "DEAD",
        "QUEUES",
        "READY",
        "SUPPRESSED",
        "CAMPAIGNS_DUE",
        "CAMPAIGNS_RUNNING",
        "RECOVERY_LAST",
        "RECOVERY_SINCE",
    ]
    pair = f"{FROM}:{TO}"
    built = [
        ("K.job('j1')", schema.job("j1")),
        ("K.idempotency('k')", schema.idempotency("k")),
        ("K.wamid('wamid.X')", schema.wamid("wamid.X")),
        ("K.recent_for_number(ARGV[5])", schema.recent_for_number(FROM)),
        ("K.publications('waapi.cloud.1.tx')", schema.publications("waapi.cloud.1.tx")),
        ("K.served('0123abcd')", schema.served("0123abcd")),
        ("K.held('w1')", schema.held("w1")),
        ("K.holds('w1')", schema.holds("w1")),
        ("K.orphan('wamid.X')", schema.orphan("wamid.X")),
        ("K.orphan_pair(ARGV[6])", schema.orphan_pair(FROM, TO)),
        ("K.unknown_pair(ARGV[6])", schema.unknown_pair(FROM, TO)),
        ("K.window(ARGV[6])", schema.window(FROM, TO)),
        ("K.seen(ARGV[6])", schema.seen(FROM, TO)),
        ("K.closed(ARGV[6])", schema.closed(FROM, TO)),
        ("K.metric('jobs')", schema.metric("jobs")),
        ("K.campaign('c1')", schema.campaign("c1")),
        ("K.campaign('c1', 'held')", schema.campaign("c1", "held")),
    ]
    expressions = [f"K.{name}" for name in constants] + [lua for lua, _ in built]
    got = run_with_prelude(redis_client, f"return {{{', '.join(expressions)}}}", FROM, pair)
    expected = [getattr(schema, name) for name in constants] + [key for _, key in built]
    assert [g.decode() for g in got] == expected


def _lua_set(client: redis.Redis, table: str) -> set[str]:
    body = f"local out = {{}} for k in pairs({table}) do table.insert(out, k) end return out"
    return {name.decode() for name in run_with_prelude(client, body)}


def test_lua_and_python_name_the_same_states(redis_client: redis.Redis) -> None:
    assert _lua_set(redis_client, "TERMINAL") == states.TERMINAL_STATES
    assert _lua_set(redis_client, "SENT_STATES") == states.SENT_STATES
    assert _lua_set(redis_client, "INFLIGHT") == states.IN_FLIGHT_STATES
    ranks = run_with_prelude(
        redis_client, "return {RANK.sent, RANK.delivered, RANK.read}"
    )  # Lua tables keep no order: ask for each
    assert ranks == [states.STATUS_RANK[s] for s in ("sent", "delivered", "read")]
    assert set(states.TERMINAL_STATES | states.IN_FLIGHT_STATES) == set(states.STATES)


def _decoded(channel: Any, raw: bytes) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    message = channel.Message(json.loads(raw), channel=channel)
    return message.headers, message.decode(), message.delivery_info


@pytest.mark.parametrize("lane", ["transactional", "bulk"])
def test_the_message_lua_writes_is_the_one_send_task_writes(
    redis_url: str, redis_client: redis.Redis, lane: str
) -> None:
    from tasks.app import create_app

    settings = make_settings(redis_url)
    queue = queue_name("cloud", FROM, lane)
    with Dispatcher(settings) as dispatcher:
        body = {"to": TO, "fromPhoneNo": FROM, "body": "hi"}
        # One job: both lanes publish a single job as waapi.send (bulk batches come
        # from send_many).
        job_id = dispatcher.send_text(TO, FROM, "hi", lane=lane)
        envelope = dispatcher.ledger.envelope(job_id)
        assert envelope is not None and envelope.payload == {"body": body["body"]}
    ours = redis_client.rpop(queue)
    app = create_app(settings)
    app.send_task("waapi.send", kwargs={"job_id": job_id}, task_id=job_id, queue=queue)
    celerys = redis_client.rpop(queue)
    assert ours is not None and celerys is not None
    with Connection(redis_url) as conn:
        channel = conn.default_channel
        our_headers, our_call, our_route = _decoded(channel, ours)
        their_headers, their_call, their_route = _decoded(channel, celerys)
        priorities = [channel._get_message_priority(json.loads(raw)) for raw in (ours, celerys)]
    assert priorities[0] == priorities[1]  # restored at the same priority
    # (args, kwargs, embed): the same task call, as Celery's worker reads the embed (a
    # field the scripts leave out is Celery's default, None, in the task's request).
    assert our_call[:2] == their_call[:2]
    ours_read, theirs_read = Context(our_call[2]), Context(their_call[2])
    for name in ("callbacks", "errbacks", "chain", "chord", "group", "parent_id"):
        assert getattr(ours_read, name) == getattr(theirs_read, name), name
    assert set(our_call[2]) <= set(their_call[2])  # no field Celery does not write
    for name in ("task", "id", "lang", "retries"):
        assert our_headers[name] == their_headers[name], name
    assert our_headers["waapi_format"] == 2  # the version of the scripts' message format
    assert our_route["routing_key"] == their_route["routing_key"] == queue
    assert json.loads(ours)["content-type"] == json.loads(celerys)["content-type"]
