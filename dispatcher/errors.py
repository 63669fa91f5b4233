"""The one error tree of waapi-dispatcher. Every error we raise derives from DispatcherError.

    DispatcherError
    ├── InvalidRequest             input refused before anything is sent or queued (#100)
    │   └── NotPermitted           the sending number's key lacks a scope the send needs
    ├── StoreUnavailable           Redis could not be reached or answered with an error
    ├── NotSettledYet              Dispatcher.wait ran out of time (also a TimeoutError)
    ├── NotSent                    a worker decided not to call the gateway for a job
    │   ├── Suppressed             the recipient opted out (131050): a bulk job is skipped
    │   ├── WindowClosed           free-form outside the 24-hour window (131047)
    │   ├── RefusedAtFanOut        a campaign row that no longer validates (#100)
    │   ├── InvalidAtRun           a job whose request no longer validates
    │   └── NoKeyBound             no configured key sends from the job's number
    └── GatewayError               a gateway call did not succeed
        ├── TransportError         no HTTP response was read
        │   ├── ConnectFailed      the request never left: safe to retry
        │   └── ResponseLost       the request left, the answer did not come: ambiguous
        │       ├── ReadTimedOut
        │       └── ConnectionReset
        ├── UnexpectedResponse     2xx that we cannot read: the send may have happened
        └── GatewayHTTPError       the gateway answered with a status >= 400
            ├── BadRequest             400
            │   └── MetaError          400 carrying Meta's "(#code) ..."
            │       ├── ApiCallLimited     4, 80007
            │       ├── ThroughputLimited  130429
            │       ├── PairRateLimited    131056
            │       ├── SpamLimited        131048
            │       ├── MarketingCapped    131049
            │       ├── OutsideWindow      131047
            │       ├── Undeliverable      131026
            │       ├── OptedOut           131050
            │       └── TemplateNotFound   132001
            ├── Unauthorized           401
            ├── Forbidden              403
            ├── NotFound               404
            ├── Conflict               409
            ├── RateLimited            429
            └── ServerError            5xx

Callers ask an error what to do (``disposition``, ``retry_after_s``, ``cooldown``) rather
than parsing messages, and find the class from a Meta code (``http_error``, built from
the leaves' ``codes``); every Meta code the dispatcher acts on is named here and nowhere
else (the worker, the webhook receiver and the ledger scripts take them from these
classes). The retry table is in ``docs/errors.md``. No
``requests`` or ``redis`` exception leaves ``dispatcher``; they are translated at the
boundary with ``raise ... from exc``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class Disposition(enum.StrEnum):
    """What a worker should do after an error."""

    RETRY = "retry"  # send again later; nothing reached the recipient
    AMBIGUOUS = "ambiguous"  # the gateway may have sent it; follow the lane's policy
    PERMANENT = "permanent"  # sending again cannot succeed


class Cooldown(enum.StrEnum):
    """Which shared limit an error asks to cool down, for every worker at once."""

    NONE = "none"
    KEY = "key"  # the API key's call limit at Meta (codes 4, 80007)
    NUMBER = "number"  # the sending number's throughput (130429)
    RECIPIENT = "recipient"  # the (number, recipient) pair (131056)
    PAUSE_NUMBER = "pause_number"  # stop the sending number until resumed (131048)


class DispatcherError(Exception):
    """Root of every error raised by waapi-dispatcher."""


@dataclass(frozen=True)
class FieldProblem:
    """One refused field: where (``items[0].title``) and which rule it broke."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field} {self.rule}" if self.field else self.rule


class InvalidRequest(DispatcherError):
    """Input that the gateway would refuse; nothing was sent or queued."""

    code: ClassVar[int] = 100  # Meta's "invalid parameter", as the gateway says it

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid request")

    def coded(self) -> str:
        """The refusal in the gateway's own format: ``(#100) <field> <rule>; ...``."""
        return coded(str(self))


class NotPermitted(InvalidRequest):
    """The key that sends from the job's number lacks a permission the send needs (the
    gateway would answer 403 with this message); nothing is queued."""

    def __init__(self, message: str) -> None:
        super().__init__([FieldProblem("", message)])
        self.message = message


def coded(text: str, code: int = InvalidRequest.code) -> str:
    """A message in the gateway's format, Meta's code first: ``(#100) limit must ...``."""
    return f"(#{code}) {text}"


class StoreUnavailable(DispatcherError):
    """Redis (the ledger and the broker) could not be reached or refused a command.

    Nothing was queued when an enqueue raises this; a worker that meets it leaves the
    message unacknowledged so that it is delivered again.
    """


class NotSettledYet(DispatcherError, TimeoutError):
    """``Dispatcher.wait`` ran out of time before the job reached a state it waited for.
    ``record`` is the job as it was last read (None: not recorded, or past retention);
    the job goes on, waiting did not change it."""

    def __init__(self, message: str, record: Any = None) -> None:
        super().__init__(message)
        self.record = record


class NotSent(DispatcherError):
    """A job the worker settles without calling the gateway: it ends ``state`` with the
    error ``outcome()`` (Meta's code where Meta would have said the same)."""

    state: ClassVar[str] = "failed"
    code: ClassVar[int | None] = None

    def outcome(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": str(self)}
        if self.code is not None:
            error["code"] = self.code
        return error


class Suppressed(NotSent):
    """A bulk job to a recipient on the suppression list (they opted out)."""

    state = "skipped"
    code = 131050


class WindowClosed(NotSent):
    """Free-form to a customer whose window is closed, and no fallback template."""

    code = 131047


class RefusedAtFanOut(NotSent):
    """A campaign row that no longer validates when its run fans out."""

    code = InvalidRequest.code


class InvalidAtRun(NotSent):
    """A queued job whose request no longer validates (published by hand, or older)."""


class NoKeyBound(NotSent):
    """No configured API key sends from the job's number any more."""


class GatewayError(DispatcherError):
    """A gateway call that did not succeed. Subclasses fix the classification."""

    disposition: ClassVar[Disposition] = Disposition.PERMANENT
    cooldown: ClassVar[Cooldown] = Cooldown.NONE
    # True when the gateway (or Meta) did not take the call at all: down, overloaded or
    # over a rate. The adaptive throttle counts these against the key and the number;
    # a refusal of one message (a 4xx about its content) is a gateway that works.
    overload: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after_s: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.disposition is Disposition.RETRY

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code}, "
            f"message={self.message!r}, retry_after_s={self.retry_after_s})"
        )


class TransportError(GatewayError):
    """No HTTP response was read from the gateway."""

    overload = True


class ConnectFailed(TransportError):
    """Connection refused, DNS failure or connect timeout: the request was never sent."""

    disposition = Disposition.RETRY


class ResponseLost(TransportError):
    """The request was sent but no answer came: the gateway may or may not have sent it."""

    disposition = Disposition.AMBIGUOUS


class ReadTimedOut(ResponseLost):
    """The gateway did not answer within the read timeout."""


class ConnectionReset(ResponseLost):
    """The connection dropped after the request went out."""


class UnexpectedResponse(GatewayError):
    """A 2xx answer without the fields it must carry: treat the send as ambiguous."""

    disposition = Disposition.AMBIGUOUS
    overload = True


class GatewayHTTPError(GatewayError):
    """The gateway answered with an HTTP status >= 400."""


class BadRequest(GatewayHTTPError):
    """400: validation failed at the gateway, or Meta refused without a known code."""


class MetaError(BadRequest):
    """400 whose message carries Meta's ``(#code)``; leaves declare their codes."""

    codes: ClassVar[tuple[int, ...]] = ()


class ApiCallLimited(MetaError):
    codes = (4, 80007)
    disposition = Disposition.RETRY
    cooldown = Cooldown.KEY
    overload = True


class ThroughputLimited(MetaError):
    codes = (130429,)
    disposition = Disposition.RETRY
    cooldown = Cooldown.NUMBER
    overload = True


class PairRateLimited(MetaError):
    """Too many messages to one recipient: back off that recipient only (4^n s)."""

    codes = (131056,)
    disposition = Disposition.RETRY
    cooldown = Cooldown.RECIPIENT


class SpamLimited(MetaError):
    """Meta flagged the sender: pause the number until a person resumes it."""

    codes = (131048,)
    disposition = Disposition.RETRY
    cooldown = Cooldown.PAUSE_NUMBER


class MarketingCapped(MetaError):
    """Per-user marketing cap: retrying makes sense only much later."""

    codes = (131049,)
    disposition = Disposition.RETRY


class OutsideWindow(MetaError):
    """Free-form message outside the 24-hour window: only a template can go."""

    codes = (WindowClosed.code,)


class Undeliverable(MetaError):
    codes = (131026,)


class OptedOut(MetaError):
    """The recipient opted out of marketing from this business: the recipient goes on the
    suppression list, which bulk sends skip."""

    codes = (Suppressed.code,)
    suppression_reason: ClassVar[str] = f"opted out ({Suppressed.code})"


class TemplateNotFound(MetaError):
    codes = (132001,)


class Unauthorized(GatewayHTTPError):
    """401: missing or wrong key or secret."""


class Forbidden(GatewayHTTPError):
    """403: the key lacks a permission, a scope, a service or the sending number."""


class NotFound(GatewayHTTPError):
    """404: contact, message or template does not exist."""


class Conflict(GatewayHTTPError):
    """409: duplicate or state-incompatible."""


class RateLimited(GatewayHTTPError):
    """429: the key's per-minute or per-hour quota is used up. Not a cooldown for the
    whole key at once (a gateway that answers some calls 429 would stop every worker
    again and again): the adaptive throttle slows the key to what the gateway takes,
    and the job waits at least its Retry-After."""

    disposition = Disposition.RETRY
    overload = True


class ServerError(GatewayHTTPError):
    """5xx: the gateway failed; retry with backoff."""

    disposition = Disposition.RETRY
    overload = True


_META_CODE = re.compile(r"^\s*\(#(\d+)\)\s*")
_BY_META_CODE: dict[int, type[MetaError]] = {
    code: cls for cls in MetaError.__subclasses__() for code in cls.codes
}
_BY_STATUS: dict[int, type[GatewayHTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def parse_meta_code(message: str) -> int | None:
    """Meta's error code from a gateway message such as ``(#131047) Re-engagement ...``."""
    match = _META_CODE.match(message)
    return int(match.group(1)) if match else None


def http_error(
    status: int, message: str, *, retry_after_s: float | None = None, body: Any = None
) -> GatewayHTTPError:
    """The error class for a gateway answer: Meta's code first, then the HTTP status.

    A Meta code can arrive on a 400 (the documented case) or on another status; the code
    decides the class when we know it, else the status does. Unknown 4xx are permanent
    (plain GatewayHTTPError), unknown 5xx are ServerError.
    """
    code = parse_meta_code(message)
    cls: type[GatewayHTTPError]
    if code is not None and code in _BY_META_CODE:
        cls = _BY_META_CODE[code]
    elif code is not None and status == 400:
        cls = MetaError
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, GatewayHTTPError)
    return cls(message, status=status, code=code, retry_after_s=retry_after_s, body=body)
