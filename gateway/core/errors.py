"""The gateway's error tree. Every error a client can see has a stable ``code``.

    GatewayError
    ├── BadInputError ............ BAD_USER_INPUT
    │   ├── InvalidCursorError ... INVALID_CURSOR
    │   └── InvalidIdError ....... INVALID_ID
    ├── NotFoundError ............ NOT_FOUND
    └── UpstreamError ............ (carries the vendor)
        ├── UpstreamTimeoutError ........ UPSTREAM_TIMEOUT
        ├── UpstreamUnavailableError .... UPSTREAM_UNAVAILABLE (connect error, 5xx, circuit open)
        ├── UpstreamRateLimitedError .... UPSTREAM_RATE_LIMITED
        ├── UpstreamAuthError ........... UPSTREAM_AUTH (401/403 from the vendor)
        ├── UpstreamRejectedError ....... UPSTREAM_REJECTED (another 4xx)
        ├── UpstreamBadResponseError .... UPSTREAM_BAD_RESPONSE (malformed JSON or shape)
        ├── UpstreamBadRecordsError ..... UPSTREAM_BAD_RECORDS (records that could not be read)
        ├── UpstreamOutcomeUnknownError . UPSTREAM_OUTCOME_UNKNOWN (a write timed out)
        ├── UpstreamCallLimitError ...... UPSTREAM_CALL_LIMIT (the request's calls ran out)
        ├── UpstreamBudgetExhaustedError  UPSTREAM_BUDGET_EXHAUSTED (the vendor's budget is spent)
        └── UpstreamSlowError ........... UPSTREAM_SLOW (not answered within ``answer_within``)

Connectors translate httpx and vendor errors into this tree at the boundary, so the
graph never sees a transport exception and never leaks an upstream URL or key.
"""

from __future__ import annotations

from gateway.core.records import Vendor


class GatewayError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInputError(GatewayError):
    code = "BAD_USER_INPUT"


class InvalidCursorError(BadInputError):
    code = "INVALID_CURSOR"


class InvalidIdError(BadInputError):
    code = "INVALID_ID"


class NotFoundError(GatewayError):
    code = "NOT_FOUND"


class UpstreamError(GatewayError):
    code = "UPSTREAM_ERROR"

    def __init__(self, vendor: Vendor, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.status = status


class UpstreamTimeoutError(UpstreamError):
    code = "UPSTREAM_TIMEOUT"


class UpstreamUnavailableError(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamRateLimitedError(UpstreamError):
    code = "UPSTREAM_RATE_LIMITED"

    def __init__(
        self,
        vendor: Vendor,
        message: str,
        *,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(vendor, message, status=status)
        self.retry_after = retry_after


class UpstreamAuthError(UpstreamError):
    code = "UPSTREAM_AUTH"


class UpstreamRejectedError(UpstreamError):
    code = "UPSTREAM_REJECTED"


class UpstreamBadResponseError(UpstreamError):
    code = "UPSTREAM_BAD_RESPONSE"


class UpstreamOutcomeUnknownError(UpstreamError):
    code = "UPSTREAM_OUTCOME_UNKNOWN"


class UpstreamBadRecordsError(UpstreamError):
    """Records a vendor sent that could not be read (missing ids, bad times), ``count`` of
    them: the rest of its answer stands, and the client is told."""

    code = "UPSTREAM_BAD_RECORDS"

    def __init__(self, vendor: Vendor, message: str, *, count: int) -> None:
        super().__init__(vendor, message)
        self.count = count


class UpstreamCallLimitError(UpstreamError):
    """The request reached its bound of upstream page reads (``max_upstream_calls``) before
    this vendor's part was read through: the answer has what was read, the vendor is named."""

    code = "UPSTREAM_CALL_LIMIT"


class UpstreamBudgetExhaustedError(UpstreamError):
    """The vendor's call budget (``max_requests_per_minute``, or what the vendor said it
    allows) is spent and nothing usable was cached: the gateway did not call, so the vendor
    never refused. ``retry_after`` is when the budget has room again (seconds)."""

    code = "UPSTREAM_BUDGET_EXHAUSTED"

    def __init__(self, vendor: Vendor, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(vendor, message)
        self.retry_after = retry_after


class UpstreamSlowError(UpstreamError):
    """The vendor had not answered when ``graphql.answer_within`` passed: the answer went out
    without it, and its call goes on in the background to fill the cache."""

    code = "UPSTREAM_SLOW"
