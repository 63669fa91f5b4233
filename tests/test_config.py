"""Settings: the simple case, several keys, and wrong values named without their secrets."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from config import DEFAULT_BASE_URL, ConfigError, Settings, load_settings

SECRET = "secr_TOPSECRET_VALUE_42"
TOKEN = "verify_TOKEN_VALUE_99"
ENV_NAMES = [
    "WAAPI_BASE_URL",
    "WAAPI_API_KEY",
    "WAAPI_API_SECRET",
    "WAAPI_FROM_NUMBERS",
    "WAAPI_WEBHOOK_VERIFY_TOKEN",
    "WAAPI_PER_MINUTE",
    "WAAPI_PER_HOUR",
    "WAAPI_SCOPES",
    "WAAPI_KEYS",
    "REDIS_URL",
    "WAAPI_CONNECT_TIMEOUT_S",
    "WAAPI_READ_TIMEOUT_S",
    "RETRY_MAX_ATTEMPTS",
    "RETRY_BASE_DELAY_S",
    "RETRY_MAX_DELAY_S",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_mean_no_credentials() -> None:
    settings = load_settings()
    assert settings.keys == ()
    assert not settings.has_credentials
    assert settings.waapi_base_url == DEFAULT_BASE_URL
    assert settings.redis_url == "redis://localhost:6379/0"


def test_simple_case_is_three_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAAPI_API_KEY", "waapi_live")
    monkeypatch.setenv("WAAPI_API_SECRET", SECRET)
    monkeypatch.setenv("WAAPI_FROM_NUMBERS", "+917890000199, 15550000001")
    monkeypatch.setenv("WAAPI_WEBHOOK_VERIFY_TOKEN", TOKEN)
    monkeypatch.setenv("WAAPI_PER_MINUTE", "600")
    settings = load_settings()
    [key] = settings.keys
    assert key.numbers == ("+917890000199", "+15550000001")
    assert key.secret is not None and key.secret.get_secret_value() == SECRET
    assert key.per_minute == 600
    assert settings.from_numbers == ("+917890000199", "+15550000001")
    assert settings.key_for_number("15550000001") is key
    for text in (repr(settings), str(settings), repr(key), str(settings.model_dump())):
        assert SECRET not in text and TOKEN not in text


def test_several_keys_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "WAAPI_KEYS",
        json.dumps(
            [
                {
                    "name": "crm",
                    "key": "waapi_a",
                    "secret": SECRET,
                    "numbers": ["+15550000001"],
                    "per_minute": 100,
                    "per_hour": 5000,
                    "webhook_verify_token": TOKEN,
                },
                {
                    "name": "ops",
                    "key": "waapi_b",
                    "numbers": "+15550000002,+15550000003",
                    "scopes": ["messages.send"],
                },
            ]
        ),
    )
    settings = load_settings()
    assert [k.name for k in settings.keys] == ["crm", "ops"]
    assert settings.key_for_number("+15550000003").name == "ops"
    assert settings.keys[1].scopes == ("messages.send",)
    with pytest.raises(KeyError):
        settings.key_for_number("+15550000009")


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"WAAPI_API_KEY=waapi_env\nWAAPI_API_SECRET={SECRET}\nWAAPI_FROM_NUMBERS=+15550000001\n"
    )
    assert load_settings().keys[0].key == "waapi_env"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"WAAPI_API_KEY": "waapi_x", "WAAPI_API_SECRET": SECRET, "WAAPI_FROM_NUMBERS": "+12"},
            "WAAPI_FROM_NUMBERS: '+12' must be an E.164 number",
        ),
        (
            {
                "WAAPI_API_KEY": "waapi_x",
                "WAAPI_API_SECRET": "nope" + SECRET,
                "WAAPI_FROM_NUMBERS": "+15550000001",
            },
            "WAAPI_API_SECRET: an API secret starts with 'secr_'",
        ),
        (
            {"WAAPI_API_KEY": "waapi_x", "WAAPI_API_SECRET": SECRET},
            "WAAPI_FROM_NUMBERS: required with WAAPI_API_KEY",
        ),
        (
            {"WAAPI_API_SECRET": SECRET, "WAAPI_FROM_NUMBERS": "+15550000001"},
            "WAAPI_API_KEY: required",
        ),
        (
            {
                "WAAPI_API_KEY": "key_without_prefix",
                "WAAPI_API_SECRET": SECRET,
                "WAAPI_FROM_NUMBERS": "+15550000001",
            },
            "WAAPI_API_KEY: String should match pattern",
        ),
        (
            {"WAAPI_KEYS": '[{"key": "waapi_a", "secret": "' + SECRET + '"'},
            "WAAPI_KEYS: not valid JSON",
        ),
        ({"WAAPI_KEYS": "[]"}, "WAAPI_KEYS: must be a non-empty JSON list"),
        (
            {
                "WAAPI_KEYS": json.dumps(
                    [
                        {
                            "key": "waapi_a",
                            "secret": SECRET,
                            "numbers": ["+15550000001"],
                            "per_minute": 0,
                        }
                    ]
                )
            },
            "WAAPI_KEYS[0].per_minute: Input should be greater than 0",
        ),
        (
            {
                "WAAPI_KEYS": json.dumps(
                    [
                        {
                            "name": "a",
                            "key": "waapi_a",
                            "numbers": ["+15550000001"],
                            "phone_number_ids": {"+15550000001": "106540352242922"},
                        },
                        {
                            "name": "b",
                            "key": "waapi_b",
                            "numbers": ["+15550000002"],
                            "phone_number_ids": {"+15550000002": "106540352242922"},
                        },
                    ]
                )
            },
            "WAAPI_KEYS: phone_number_id 106540352242922 is given for both +15550000001 and "
            "+15550000002",
        ),
        (
            {
                "WAAPI_KEYS": json.dumps([{"key": "waapi_a", "numbers": ["+15550000001"]}]),
                "WAAPI_API_KEY": "waapi_b",
            },
            "set either WAAPI_KEYS or WAAPI_API_KEY",
        ),
        ({"WAAPI_READ_TIMEOUT_S": "soon"}, "WAAPI_READ_TIMEOUT_S: Input should be a valid number"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL: String should match pattern"),
        (
            {"REDIS_URL": f"sentinel://:{SECRET}@10.0.0.1:26379,10.0.0.2:26379/0"},
            "REDIS_URL: a sentinel:// URL names its master once: ?master=NAME",
        ),
        (
            {"REDIS_URL": f"sentinel://:{SECRET}@10.0.0.1:263790/0?master=waapi"},
            "REDIS_URL: each Sentinel of a sentinel:// URL is host:port",
        ),
        (
            {"REDIS_URL": f"sentinel://:{SECRET}@10.0.0.1/zero?master=waapi"},
            "REDIS_URL: a sentinel:// URL's database is a number (/0)",
        ),
        (
            {"RETRY_BASE_DELAY_S": "10", "RETRY_MAX_DELAY_S": "5"},
            "RETRY_MAX_DELAY_S: must be at least RETRY_BASE_DELAY_S",
        ),
    ],
)
def test_a_wrong_value_names_the_variable_and_the_rule_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert SECRET not in message and SECRET not in repr(caught.value)
    assert SECRET not in caplog.text
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_phone_number_ids_name_our_own_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    def keys(*ids: dict[str, str]) -> str:
        return json.dumps(
            [
                {"name": f"k{n}", "key": f"waapi_k{n}", "numbers": [f"+1555000000{n}"]}
                | {"phone_number_ids": given}
                for n, given in enumerate(ids, start=1)
            ]
        )

    monkeypatch.setenv("WAAPI_KEYS", keys({"15550000001": "1065"}, {"+15550000002": "2077"}))
    settings = load_settings()
    assert settings.number_by_phone_number_id() == {
        "1065": "+15550000001",
        "2077": "+15550000002",
    }
    for wrong, rule in (
        (keys({"+15550000009": "1065"}), "+15550000009 is not one of this key's numbers"),
        (keys({"+15550000001": "abc"}), "must be Meta's numeric id"),
        (keys({"+15550000001": "1065"}, {"+15550000002": "1065"}), "1065 is given for both"),
    ):
        monkeypatch.setenv("WAAPI_KEYS", wrong)
        with pytest.raises(ConfigError, match=rule.replace("+", r"\+")):
            load_settings()


def test_marketing_cap_intervals_are_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_CAP_BACKOFF_S", "[600, 7200]")
    assert load_settings().marketing_cap_backoff_s == (600.0, 7200.0)
    monkeypatch.setenv("MARKETING_CAP_BACKOFF_S", "[600, 0]")
    with pytest.raises(ConfigError, match="MARKETING_CAP_BACKOFF_S"):
        load_settings()


def test_prices_by_category_and_country_code(monkeypatch: pytest.MonkeyPatch) -> None:
    prices = {"marketing": {"+91": 0.0107, "*": 0.025}, "utility": {"+1": 0.004}}
    monkeypatch.setenv("PRICES", json.dumps(prices))
    settings = load_settings()
    assert settings.price_of("marketing", "+919876543210") == 0.0107
    assert settings.price_of("marketing", "+15551230001") == 0.025  # "*"
    assert settings.price_of("utility", "+15551230001") == 0.004
    assert settings.price_of("utility", "+919876543210") is None  # no "*" for utility
    assert settings.price_of("service", "+15551230001") is None
    for wrong, rule in (
        ({"marketing": {"91": 0.01}}, "must be '\\+<country code>' or '\\*'"),
        ({"marketing": {"+91": -1}}, "must be a price, 0 or more"),
        ({"marketing": 0.01}, "must be an object of prices by country"),
    ):
        monkeypatch.setenv("PRICES", json.dumps(wrong))
        with pytest.raises(ConfigError, match=f"PRICES: .*{rule}"):
            load_settings()


def test_keys_may_share_a_number_and_the_first_with_the_channel_sends(redis_url: str) -> None:
    """Two keys bound to one number: the first in WAAPI_KEYS that has the job's channel
    sends (its quota, its scopes); the other key's quota is not added."""
    import redis

    from dispatcher.engine.clients import Clients
    from dispatcher.engine.limiter import Limiter
    from dispatcher.errors import NotPermitted
    from dispatcher.job.envelope import JobEnvelope
    from dispatcher.producer.prepare import JobPreparer

    keys = [
        {
            "name": "marketing",
            "key": "waapi_m",
            "numbers": ["+15550000001"],
            "channels": ["cloud"],
            "scopes": ["messages.send"],
            "per_minute": 600,
        },
        {
            "name": "ops",
            "key": "waapi_o",
            "numbers": ["+15550000001", "+15550000002"],
            "channels": ["cloud", "qr"],
            "per_minute": 100,
        },
    ]
    settings = Settings(_env_file=None, waapi_keys=json.dumps(keys), redis_url=redis_url)  # type: ignore[call-arg]
    assert settings.from_numbers == ("+15550000001", "+15550000002")
    assert settings.key_for_number("+15550000001", "cloud").name == "marketing"
    assert settings.key_for_number("+15550000001", "qr").name == "ops"
    limiter = Limiter(redis.Redis.from_url(redis_url), settings)
    clients = Clients(settings, 1)

    def job(channel: str) -> JobEnvelope:
        return JobEnvelope(
            id="j", channel=channel, type="text", to="+15551230001",
            from_phone_no="+15550000001", payload={"body": "x"},
        )  # fmt: skip

    assert limiter.key_name(job("cloud")) == "marketing"
    assert limiter.key_name(job("qr")) == "ops"
    [minute] = [lim for lim in limiter.limits_for(job("cloud")) if lim.name.startswith("key:")]
    assert (minute.name, minute.rate) == ("key:marketing:m", 600 * 0.99)  # not 700
    assert clients.for_envelope(job("cloud")) is not clients.for_envelope(job("qr"))
    preparer = JobPreparer(settings, time.time)
    body = {"to": "+15551230001", "fromPhoneNo": "+15550000001", "type": "text",
            "payload": {"body": "x"}, "contact": {"first_name": "Ann"}}  # fmt: skip
    with pytest.raises(NotPermitted, match=r"contacts\.write"):  # marketing's scopes decide
        preparer.prepare("cloud", "send", body)
    assert preparer.prepare("qr", "text", {"to": "+15551230001", "fromPhoneNo": "+15550000001",
                                           "body": "x"}).channel == "qr"  # fmt: skip


def test_a_sentinel_url_names_the_group_for_the_ledger_and_for_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "sentinel://:p%40ss@s1:26380,s2/3?master=waapi")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", SECRET)
    settings = load_settings()
    group = settings.sentinel
    assert group is not None
    assert (group.sentinels, group.master, group.db) == ((("s1", 26380), ("s2", 26379)), "waapi", 3)
    assert (group.password, group.sentinel_password) == ("p@ss", SECRET)
    assert SECRET not in repr(group) and "p@ss" not in repr(group)
    assert group.kombu_url() == "sentinel://:p%40ss@s1:26380/3;sentinel://:p%40ss@s2:26379/3"
    assert group.kombu_options() == {
        "master_name": "waapi",
        "sentinel_kwargs": {"password": SECRET},
    }
    assert settings.replicas_to_confirm == 1  # a Sentinel group has a replica to confirm
    assert load_settings(redis_url="redis://localhost:6379/0").replicas_to_confirm == 0
    assert load_settings(redis_confirm_replicas=0).replicas_to_confirm == 0
