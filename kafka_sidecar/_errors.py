"""The one exception hierarchy of kafka-sidecar.

::

    SidecarError                      root; never raised itself
    ├── ConfigError                   start-up: chains.yml and settings (carries every problem at once)
    ├── PluginError                   start-up: a plugin failed to load or registered something invalid
    ├── StartupError                  start-up: the machine refuses what the config asks (port taken, bad TLS file)
    └── HandlerError                  run time: raised inside a chain
        ├── RetriableError            may succeed when tried again (broker down, backend timeout)
        │   ├── KafkaUnavailable      503: the broker cannot be reached; nothing was written
        │   ├── KafkaOutcomeUnknown   504: no acknowledgement in time; records may still be written
        │   ├── UpstreamUnavailable   503: a dependency (schema registry, backend, ksqlDB) did not answer
        │   └── UpstreamTimeout       504: a dependency answered too late
        └── PermanentError            will fail the same way again
            ├── RequestError          400 family: the caller sent something we cannot use
            │   ├── ValidationFailed  422: a field of the body or a parameter is wrong
            │   ├── PayloadTooLarge   413
            │   ├── UnsupportedMediaType 415
            │   ├── NotAcceptable     406
            │   ├── NotFound          404
            │   ├── Conflict          409
            │   ├── UpstreamRejected  400: a dependency (ksqlDB) refused what the caller asked for
            │   ├── TooManyRequests   429
            │   ├── RequestTimeout    408: the request body did not arrive in time
            │   └── Forbidden         403
            ├── KafkaRejected         the broker refused the records (authorization, too large, ...)
            └── RecordUndecodable     a consumed record's bytes do not match its format

Every error carries a stable machine-readable ``code`` and the HTTP ``status`` it maps to;
:mod:`kafka_sidecar._http.problems` turns any of them into an RFC 9457 problem body, in one place.
Nothing in the code base raises HTTP responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar


class SidecarError(Exception):
    """Root of every error kafka-sidecar raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    retriable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        v2_error_code: int | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.v2_error_code = v2_error_code
        self.extra = dict(extra or {})


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found while loading configuration, with where it is."""

    file: str
    line: int
    column: int
    path: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}  {self.path or '<root>'}  {self.message}"
        if self.suggestion:
            text += f"  (did you mean {self.suggestion!r}?)"
        return text


class ConfigError(SidecarError):
    """Configuration is invalid. Holds every problem found, not just the first."""

    code = "config-invalid"
    title = "Configuration is invalid"

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StartFailed(SidecarError):
    """``Sidecar.start()`` failed; what had started was stopped again. The cause is chained."""

    code = "start-failed"
    title = "The sidecar failed to start"


class PluginError(SidecarError):
    """A plugin could not be loaded or registered something invalid."""

    code = "plugin-invalid"
    title = "Plugin error"


class StartupError(SidecarError):
    """``run`` cannot start: ``field`` names the config key, ``fix`` says what to do, both on one line."""

    code = "startup-failed"
    title = "Cannot start"

    def __init__(self, detail: str, *, field: str, fix: str) -> None:
        super().__init__(detail, field=field)
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}; fix: {self.fix}"


class HandlerError(SidecarError):
    """Raised inside a chain while handling an exchange."""


class RetriableError(HandlerError):
    retriable = True
    status = 503
    code = "unavailable"
    title = "Service unavailable"


class KafkaUnavailable(RetriableError):
    code = "kafka-unavailable"
    title = "Kafka is unavailable"


class KafkaOutcomeUnknown(RetriableError):
    status = 504
    code = "kafka-outcome-unknown"
    title = "Kafka did not acknowledge in time; the records may be written"


class UpstreamUnavailable(RetriableError):
    code = "upstream-unavailable"
    title = "A dependency is unavailable"


class UpstreamTimeout(RetriableError):
    status = 504
    code = "upstream-timeout"
    title = "A dependency timed out"


class PermanentError(HandlerError):
    status = 500
    code = "permanent-error"
    title = "Request failed"


class RequestError(PermanentError):
    status = 400
    code = "bad-request"
    title = "Bad request"


class ValidationFailed(RequestError):
    status = 422
    code = "validation-failed"
    title = "Validation failed"


class PayloadTooLarge(RequestError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(RequestError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class NotAcceptable(RequestError):
    status = 406
    code = "not-acceptable"
    title = "Not acceptable"


class NotFound(RequestError):
    status = 404
    code = "not-found"
    title = "Not found"


class MethodNotAllowed(RequestError):
    status = 405
    code = "method-not-allowed"
    title = "Method not allowed"


class Conflict(RequestError):
    status = 409
    code = "conflict"
    title = "Conflict"


class TooManyRequests(RequestError):
    status = 429
    code = "too-many-requests"
    title = "Too many requests"


class RequestTimeout(RequestError):
    status = 408
    code = "request-timeout"
    title = "Request timeout"


class UpstreamRejected(RequestError):
    """A dependency refused the request on its merits (ksqlDB's statement errors); ``extra`` carries its code."""

    code = "upstream-rejected"
    title = "A dependency rejected the request"


class Unauthorized(RequestError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(RequestError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class KafkaRejected(PermanentError):
    status = 502
    code = "kafka-rejected"
    title = "Kafka rejected the request"


class RecordUndecodable(PermanentError):
    status = 422
    code = "record-undecodable"
    title = "Record cannot be decoded"
