"""What can go wrong on the way to an answer, as the transport's own exceptions (one home for all of them).

libcurl's failures (`curl`), the body's checks (`body`) and the request's own set-up raise these; each says whether
asking again may help (`retry`, read by `retry.classify`) and its kind of trouble in a few words (`problem`). A
connection that could not be made at all also says why (`why`: "connection refused", "unknown host", "TLS failure:
..."), which the set-up check (`preflight`) turns into a sentence naming what to check.
"""

from __future__ import annotations


class NetworkError(Exception):
    """A GET that got no usable answer. The message is the detail; `problem` the kind of trouble."""

    problem = "connection failed"
    retry = True


class ConnectFailed(NetworkError):
    """No connection could be made (refused, unknown host, unreachable); `why` says so in a few words."""

    def __init__(self, message: str, why: str | None = None) -> None:
        super().__init__(message)
        self.why = why


class ConnectTimeout(ConnectFailed):
    """The connection was not made within the timeout."""

    problem = "timed out"

    def __init__(self, message: str) -> None:
        super().__init__(message, "connection timed out")


class TlsRefused(ConnectFailed):
    """TLS refused the server (its certificate, or the handshake): asking again would not help."""

    problem = "TLS verification failed"
    retry = False


class ProxyFailed(ConnectFailed):
    """The proxy could not be reached or refused the request; `proxy` is its host:port (never its credentials)."""

    def __init__(self, message: str, why: str | None, proxy: str) -> None:
        super().__init__(message, why)
        self.proxy = proxy


class ReadTimeout(NetworkError):
    """No byte arrived within the timeout on a connection made."""

    problem = "timed out"


class BodyCutShort(NetworkError):
    """The body ended before its Content-Length, or the JSON in it does not parse: retried."""

    problem = "the body was cut short"


class BadEncoding(NetworkError):
    """A compressed body that does not inflate."""

    problem = "the body could not be decoded"


class Overdue(NetworkError):
    """The attempt ran past its deadline (checked while the transfer runs and between chunks): retried."""

    problem = ""


class BadHeader(NetworkError):
    """A request header that cannot be sent (a line break in it): refused before anything is sent."""

    problem = ""
    retry = False


class TooManyRedirects(NetworkError):
    """Redirects that do not end (a loop): given up."""

    problem = ""
    retry = False
