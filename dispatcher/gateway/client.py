"""The WAAPI External API client: one class, one private request method, typed results.

The client retries nothing: whether and when to send again is the worker's decision,
taken from the error's classification. Every ``requests`` exception is translated here
into the project's error tree; none escapes.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import requests
import urllib3
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProxyError,
)
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from config import ApiKeyConfig, Settings
from dispatcher.errors import (
    ConnectFailed,
    ConnectionReset,
    GatewayError,
    ReadTimedOut,
    TransportError,
    UnexpectedResponse,
    http_error,
)
from dispatcher.gateway.combined import CombinedSend
from dispatcher.gateway.contacts import UpdateContact, UpsertContact
from dispatcher.gateway.headers import parse_retry_after
from dispatcher.gateway.kinds import ContactRequest, SendRequest
from dispatcher.gateway.results import CombinedResult, Contact, Ping, QrSession, SendResult

USER_AGENT = "waapi-dispatcher/0.1"


def new_session(pool_size: int = 10, base_url: str | None = None) -> requests.Session:
    """A session whose pool holds ``pool_size`` connections and blocks when all are busy.

    Size it to the number of threads that share it: a smaller pool throws away
    connections (and their TLS handshakes) under load; ``pool_block`` makes extra
    threads wait for a connection instead. urllib3 retries nothing (``Retry(0)``).

    With ``base_url`` (every call goes to that one gateway), what requests would read
    from the environment on every call (proxies and no_proxy, a CA bundle) is read once
    here: re-reading it took about a tenth of a busy worker's time.
    """
    session = requests.Session()
    if base_url is not None:
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=pool_size,
        pool_block=True,
        max_retries=Retry(total=0, connect=0, read=False, redirect=0, status=0),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class WaapiClient:
    """Calls the gateway with one API key. Thread-safe when its session's pool is sized.

    Method names follow the reference: ``ping`` (GET /ping), ``send`` (POST
    /whatsapp-api/messages/* and /whatsapp-qr/messages/*), ``send_combined`` (POST
    /whatsapp-api/messages/send), ``update_contact`` (PATCH /contacts),
    ``upsert_contact`` (POST /contacts), ``qr_sessions`` (GET /whatsapp-qr/sessions).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: SecretStr | None,
        *,
        session: requests.Session | None = None,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 20.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session if session is not None else new_session()
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._auth = {"X-API-Key": api_key}
        if api_secret is not None:
            self._auth["X-API-Secret"] = api_secret.get_secret_value()
        # A session settled for this gateway (new_session(..., base_url): the environment
        # read once) and without a proxy for it is called through its urllib3 pool directly.
        self._direct = _direct_pool(self._session, self.base_url)
        self._direct_timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
        self._direct_headers = {
            **self._session.headers,
            **self._auth,
            "Content-Type": "application/json",
        }
        self._async_headers = {
            "User-Agent": USER_AGENT,
            **self._auth,
            "Content-Type": "application/json",
        }

    @classmethod
    def for_key(
        cls, settings: Settings, key: ApiKeyConfig, session: requests.Session | None = None
    ) -> WaapiClient:
        """A client for one configured key, with the configured base URL and timeouts."""
        return cls(
            settings.waapi_base_url,
            key.key,
            key.secret,
            session=session,
            connect_timeout_s=settings.waapi_connect_timeout_s,
            read_timeout_s=settings.waapi_read_timeout_s,
        )

    def __repr__(self) -> str:
        return f"WaapiClient({self.base_url!r}, api_key={self._auth['X-API-Key']!r})"

    def close(self) -> None:
        self._session.close()

    # --- endpoints ---------------------------------------------------------------------

    def ping(self) -> Ping:
        """``GET /ping``: check the credentials; echoes the vendor id and the key's name."""
        body = self._request("GET", "/ping")
        return Ping(vendor_id=str(body.get("vendorId")), api_key_name=str(body.get("apiKeyName")))

    def send(self, request: SendRequest) -> SendResult:
        """``POST`` the request to its endpoint; the result carries the message id."""
        if isinstance(request, CombinedSend):
            return self.send_combined(request).message
        body = self._request("POST", request.endpoint, request.to_gateway())
        return SendResult.from_data(body.get("data"))

    def send_combined(self, request: CombinedSend) -> CombinedResult:
        """``POST /whatsapp-api/messages/send``: upsert the contact and send, atomically."""
        body = self._request("POST", request.endpoint, request.to_gateway())
        return CombinedResult.from_data(body.get("data"))

    def update_contact(self, request: UpdateContact) -> Contact:
        """``PATCH /contacts``: update an existing contact (404 when there is none)."""
        body = self._request("PATCH", request.endpoint, request.to_gateway())
        return Contact.from_data(body.get("data"))

    def upsert_contact(self, request: UpsertContact) -> Contact:
        """``POST /contacts``: create or update a contact by phone number."""
        body = self._request("POST", request.endpoint, request.to_gateway())
        return Contact.from_data(body.get("data"))

    def write_contact(self, request: UpdateContact | UpsertContact) -> Contact:
        """A contact write queued as a job: update (PATCH) or upsert (POST)."""
        if isinstance(request, UpdateContact):
            return self.update_contact(request)
        return self.upsert_contact(request)

    def call(self, request: SendRequest | ContactRequest) -> str | None:
        """A job's gateway call: the message id (None for a contact write)."""
        method, path = _route(request)
        return _message_id(request, self._request(method, path, request.to_gateway()))

    async def call_async(
        self, http: aiohttp.ClientSession, request: SendRequest | ContactRequest
    ) -> str | None:
        """:meth:`call` on an event loop, through ``http``, the loop's pooled session
        (its timeouts: :func:`new_async_session`). The answer is read, and its errors
        classified, as :meth:`call`'s."""
        method, path = _route(request)
        body = json.dumps(request.to_gateway()).encode()
        try:
            async with http.request(
                method, self.base_url + path, data=body, headers=self._async_headers
            ) as response:
                text = await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _aiohttp_error(exc) from exc
        answer = _answer(
            response.status, response.reason, response.headers.get("Retry-After"), text
        )
        return _message_id(request, answer)

    def qr_sessions(self) -> list[QrSession]:
        """``GET /whatsapp-qr/sessions``: the connected QR sessions of the vendor."""
        body = self._request("GET", "/whatsapp-qr/sessions")
        data = body.get("data")
        if not isinstance(data, list):
            raise UnexpectedResponse("2xx answer without a list of sessions", body=body)
        return [QrSession.from_data(item) for item in data]

    # --- transport ---------------------------------------------------------------------

    def _request(
        self, method: str, path: str, json_body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one request; return the JSON body of a 2xx or raise a GatewayError."""
        url = self.base_url + path
        if self._direct is not None:
            return _answer(*self._call_direct(method, url, json_body))
        return _answer(*self._call_requests(method, url, json_body))

    def _call_requests(
        self, method: str, url: str, json_body: Mapping[str, Any] | None
    ) -> tuple[int, str | None, str | None, str]:
        try:
            response = self._session.request(
                method, url, json=json_body, headers=self._auth, timeout=self._timeout
            )
            text = response.text
        except requests.RequestException as exc:
            raise _transport_error(exc) from exc
        return response.status_code, response.reason, response.headers.get("Retry-After"), text

    def _call_direct(
        self, method: str, url: str, json_body: Mapping[str, Any] | None
    ) -> tuple[int, str | None, str | None, str]:
        """The same call on the session's urllib3 pool, without requests' per-call work
        (hooks, cookies, environment merging, request preparation): about half the CPU
        per call, which is what a busy worker spends most of its time on."""
        assert self._direct is not None
        headers = self._direct_headers
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
        try:
            response = self._direct.urlopen(
                method,
                parse_url(url).request_uri,
                body=body,
                headers=headers,
                timeout=self._direct_timeout,
                retries=False,
                redirect=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise _urllib3_error(exc) from exc
        text = response.data.decode("utf-8", errors="replace")
        return response.status, response.reason, response.headers.get("Retry-After"), text


def new_async_session(
    connect_timeout_s: float, read_timeout_s: float, in_flight: int, base_url: str
) -> aiohttp.ClientSession:
    """The pooled session of an event loop's gateway calls (:meth:`WaapiClient.call_async`):
    ``in_flight`` connections at most, the timeouts of the sync client (connect; read,
    between bytes of the answer), the proxy the environment names (read once, as
    requests reads it), TLS verified against the same CA bundle. Make it on the loop
    that uses it."""
    ssl_context: Any = None
    if base_url.startswith("https:"):
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        ssl_context = ssl.create_default_context(
            cafile=bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=in_flight, ssl=ssl_context),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        ),
        # The environment read once (as new_session does): aiohttp's trust_env would
        # read the proxies and ~/.netrc again on every call.
        proxy=_environ_proxy(base_url),
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


def _environ_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (None: none, or no_proxy)."""
    proxies = requests.utils.get_environ_proxies(base_url)
    return requests.utils.select_proxy(base_url, proxies)


def _route(request: SendRequest | ContactRequest) -> tuple[str, str]:
    """The method and path of a job's gateway call."""
    return ("PATCH" if isinstance(request, UpdateContact) else "POST"), request.endpoint


def _message_id(request: SendRequest | ContactRequest, body: dict[str, Any]) -> str | None:
    """The message id a job's call answered (None for a contact write, whose answer is
    still read: a 2xx without a contact is unexpected)."""
    data = body.get("data")
    if isinstance(request, UpdateContact | UpsertContact):
        Contact.from_data(data)
        return None
    if isinstance(request, CombinedSend):
        return CombinedResult.from_data(data).message.message_id
    return SendResult.from_data(data).message_id


def _answer(status: int, reason: str | None, retry_after: str | None, text: str) -> dict[str, Any]:
    """The JSON body of a 2xx, or the GatewayError the answer says."""
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text[:500]
    if status >= 400:
        raise http_error(
            status,
            _error_message(body, reason),
            retry_after_s=parse_retry_after(retry_after, time.time()),
            body=body,
        )
    if not isinstance(body, dict):
        raise UnexpectedResponse(f"{status} answer that is not JSON", body=body)
    if body.get("success") is False:
        raise http_error(400, _error_message(body, "success: false"), body=body)
    return body


def _aiohttp_error(exc: aiohttp.ClientError | TimeoutError) -> GatewayError:
    """Map an aiohttp exception as ``_urllib3_error`` maps urllib3's (never sent:
    ConnectFailed; may have been sent: ConnectionReset, ReadTimedOut)."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return ConnectFailed(f"could not connect: {exc}")
    if isinstance(exc, TimeoutError):
        return ReadTimedOut("no answer within the read timeout")
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError
    ):
        return ConnectionReset(f"connection dropped after the request was sent: {exc}")
    return TransportError(f"request could not be made: {type(exc).__name__}: {exc}")


def _direct_pool(session: requests.Session, base_url: str) -> Any:
    """The urllib3 pool to call ``base_url`` on, when the session may be bypassed: the
    environment was read once (``trust_env`` off) and no proxy applies. TLS is verified
    as requests would (the session's CA bundle, else certifi's)."""
    if session.trust_env or requests.utils.select_proxy(base_url, session.proxies):
        return None
    adapter = session.get_adapter(base_url)
    if not isinstance(adapter, HTTPAdapter):
        return None
    pool_kwargs: dict[str, Any] = {}
    if base_url.startswith("https:"):
        if session.verify is False:
            pool_kwargs = {"cert_reqs": "CERT_NONE"}
        else:
            bundle = session.verify if isinstance(session.verify, str) else None
            pool_kwargs = {
                "cert_reqs": "CERT_REQUIRED",
                "ca_certs": bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH,
            }
    return adapter.poolmanager.connection_from_url(base_url, pool_kwargs=pool_kwargs)


def _urllib3_error(exc: urllib3.exceptions.HTTPError) -> GatewayError:
    """Map a urllib3 exception as ``_transport_error`` maps requests' (never sent:
    ConnectFailed; may have been sent: ConnectionReset, ReadTimedOut)."""
    if isinstance(exc, ConnectTimeoutError | NewConnectionError | urllib3.exceptions.SSLError):
        return ConnectFailed(f"could not connect: {exc}")
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return ReadTimedOut("no answer within the read timeout")
    if isinstance(exc, urllib3.exceptions.ProtocolError | urllib3.exceptions.DecodeError):
        return ConnectionReset(f"connection dropped after the request was sent: {exc}")
    return TransportError(f"request could not be made: {type(exc).__name__}: {exc}")


def _error_message(body: Any, fallback: str | None) -> str:
    if isinstance(body, dict):
        for field in ("error", "message"):
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
        return json.dumps(body)[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback or "no message"


def _transport_error(exc: requests.RequestException) -> GatewayError:
    """Map a requests exception to ConnectFailed (never sent) or ResponseLost (ambiguous)."""
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectFailed(f"connect timeout: {exc}")
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimedOut("no answer within the read timeout")
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectFailed(f"TLS handshake failed: {exc}")
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, ProxyError):  # could not reach the proxy: never sent
            reason = reason.original_error
        if isinstance(reason, ConnectTimeoutError | NewConnectionError | NameResolutionError):
            return ConnectFailed(f"could not connect: {reason}")
        return ConnectionReset(f"connection dropped after the request was sent: {reason}")
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return ConnectionReset(f"answer cut off: {exc}")
    return TransportError(f"request could not be made: {type(exc).__name__}: {exc}")
