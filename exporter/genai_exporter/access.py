"""Who may use a listener: the checks made on a request's headers before its body is read.

A `Gate` guards one listener. In the exporter-toolkit's order it applies the web config's rate
limit (429), then asks for credentials: the web config's basic-auth users on both listeners, and on
the OTLP listener also the bearer tokens of the exporter config. A request without valid
credentials gets 401 and a `WWW-Authenticate` challenge; its body is never read or decoded.

Credential checks do not leak through timing: bearer tokens are compared as SHA-256 digests with
`hmac.compare_digest`, against every configured token; an unknown basic-auth user is checked
against a fixed bcrypt hash like a known one. bcrypt is slow on purpose (tens of milliseconds), so,
as in the toolkit, one check runs at a time and results are cached by a digest of
(user, hash, password), never by the password itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from genai_exporter.config import IngestAuth, parse_bearer_tokens
from genai_exporter.webconfig import RateLimit, UnusableWebConfig, WebConfigFile, WebSettings

LOGGER = logging.getLogger(__name__)

REALM = "genai-exporter"
# The toolkit's answer to an unknown user: bcrypt of a password nobody has, at the usual cost.
_UNKNOWN_USER_HASH = b"$2b$10$4uJQyXp9KumifogGPznrA.EgiphNdln7261stxJTLChPiDZNNw5VK"
_MAX_CACHED_CHECKS = 256
# How long a sender refused for a broken credentials file should wait before retrying.
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Refusal:
    """An answer instead of serving the request: status, reason (safe to show) and extra headers."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Admission:
    """What a Gate decided for one request: headers every answer carries, and a refusal if any."""

    headers: tuple[tuple[str, str], ...] = ()
    refusal: Refusal | None = None


class BasicAuthUsers:
    """Checks basic-auth credentials against the web config's bcrypt hashes, with a bounded cache."""

    def __init__(self) -> None:
        self._bcrypt_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    def check(self, users: Mapping[str, str], user: str, password: str) -> bool:
        """Whether `user` may log in with `password` under the current users (user -> bcrypt hash)."""
        hashed = users.get(user)
        known = hashed is not None
        hash_bytes = hashed.encode() if known else _UNKNOWN_USER_HASH
        key = hashlib.sha256(b"\0".join((user.encode("utf-8", "surrogateescape"), hash_bytes,
                                         password.encode("utf-8", "surrogateescape")))).digest()
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached and known
        with self._bcrypt_lock:
            try:
                matches = bcrypt.checkpw(password.encode("utf-8", "surrogateescape"), hash_bytes)
            except ValueError:  # a password over bcrypt's 72 bytes cannot match
                matches = False
        allowed = matches and known
        with self._cache_lock:
            self._cache[key] = allowed
            if len(self._cache) > _MAX_CACHED_CHECKS:
                self._cache.popitem(last=False)
        return allowed


def _token_digest(token: str) -> bytes:
    # Digests have one length, so comparing them tells nothing about the length of a token.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class BearerTokens:
    """The bearer tokens allowed to send spans: from the config, or from a file re-read when it changes.

    A token file that becomes unreadable, empty or malformed is logged once and refuses every
    request with 503 (retryable) until it is fixed, rather than letting anyone in or dropping spans
    for good with 401.
    """

    def __init__(self, auth: IngestAuth) -> None:
        self._file = auth.bearer_tokens_file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._digests: tuple[bytes, ...] = tuple(_token_digest(t) for t in auth.bearer_tokens)
        self._problem = ""
        if self._file is not None:
            self._reload(self._file)

    def _reload(self, path: Path) -> None:
        try:
            status = path.stat()
            stamp = (status.st_ino, status.st_size, status.st_mtime_ns)
        except OSError:
            stamp = (0, -1, 0)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            tokens, problems = parse_bearer_tokens(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            tokens, problems = (), [f"cannot read: {getattr(error, 'strerror', None) or error}"]
        if problems:
            self._problem = f"bearer token file {path}: {'; '.join(problems)}"
            LOGGER.error("%s; refusing OTLP requests until it is fixed", self._problem)
            return
        if self._problem or self._digests:
            LOGGER.info("bearer token file %s reloaded: %d token(s)", path, len(tokens))
        self._problem = ""
        self._digests = tuple(_token_digest(t) for t in tokens)

    def check(self, presented: str) -> bool | None:
        """True if the token is allowed, False if not; None if the token file is unusable right now."""
        with self._lock:
            if self._file is not None:
                self._reload(self._file)
            if self._problem:
                return None
            digests = self._digests
        digest = _token_digest(presented)
        allowed = False
        for candidate in digests:  # no early exit: the time does not tell which token matched
            allowed |= hmac.compare_digest(digest, candidate)
        return allowed


class TokenBucket:
    """The web config's `rate_limit`: `burst` requests at once, refilled by one per `interval`."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        with self._lock:
            now = self._clock()
            refill = (now - self._updated) / self.limit.interval_seconds
            self._tokens = min(float(self.limit.burst), self._tokens + refill)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def _credentials(authorization: str | None) -> tuple[str, str]:
    """(scheme in lower case, credentials) of an Authorization header; ("", "") when absent or blank."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return scheme.lower(), credentials.strip()


def _basic_credentials(credentials: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None


class Gate:
    """The checks of one listener, from the web config file (if any) and, on OTLP, the bearer tokens.

    `unusable_status` is what a request gets while a credentials file is broken: 500 on the web
    listener (as the toolkit answers), 503 with Retry-After on the OTLP listener, so senders retry.
    """

    def __init__(self, web_config: WebConfigFile | None, bearer_tokens: BearerTokens | None = None,
                 unusable_status: int = 500) -> None:
        self.web_config = web_config
        self._bearer = bearer_tokens
        self._users = BasicAuthUsers()
        self._unusable_status = unusable_status
        self._bucket: TokenBucket | None = None
        self._bucket_lock = threading.Lock()

    @property
    def tls_enabled(self) -> bool:
        """Whether this listener wraps its connections in TLS (fixed at startup)."""
        return self.web_config is not None and self.web_config.tls_enabled

    def settings(self) -> WebSettings | None:
        """The web settings in force (None without a web config file); raises UnusableWebConfig."""
        return self.web_config.current() if self.web_config is not None else None

    def _unusable(self, reason: str) -> Refusal:
        headers = (("Retry-After", str(RETRY_AFTER_SECONDS)),) if self._unusable_status == 503 else ()
        LOGGER.debug("refusing a request: %s", reason)
        return Refusal(self._unusable_status, "the exporter's credentials configuration cannot be used: "
                                              "see its log", headers)

    def _rate_limited(self, limit: RateLimit | None) -> bool:
        with self._bucket_lock:
            if limit is None:
                self._bucket = None
                return False
            if self._bucket is None or self._bucket.limit != limit:
                self._bucket = TokenBucket(limit)
            bucket = self._bucket
        return not bucket.allow()

    def admit(self, authorization: str | None) -> Admission:
        """Decide on a request from its Authorization header, before anything else of it is read."""
        if self.web_config is None and self._bearer is None:
            return Admission()
        try:
            settings = self.settings()
        except UnusableWebConfig as error:
            return Admission((), self._unusable(str(error)))
        users = settings.config.basic_auth_users if settings is not None else {}
        headers = settings.config.headers if settings is not None else ()
        if self._rate_limited(settings.config.rate_limit if settings is not None else None):
            return Admission(headers, Refusal(429, "too many requests: the listener's rate_limit is reached",
                                              (("Retry-After", str(RETRY_AFTER_SECONDS)),)))
        if not users and self._bearer is None:
            return Admission(headers)
        scheme, credentials = _credentials(authorization)
        if scheme == "bearer" and self._bearer is not None and credentials:
            allowed = self._bearer.check(credentials)
            if allowed is None:
                return Admission(headers, self._unusable("bearer token file unusable"))
            if allowed:
                return Admission(headers)
            return Admission(headers, self._challenge(users, "invalid bearer token", invalid_token=True))
        if scheme == "basic" and users:
            pair = _basic_credentials(credentials)
            if pair is not None and self._users.check(users, *pair):
                return Admission(headers)
            return Admission(headers, self._challenge(users, "invalid username or password"))
        return Admission(headers, self._challenge(users, "credentials required"))

    def _challenge(self, users: Mapping[str, str], reason: str, invalid_token: bool = False) -> Refusal:
        schemes: list[str] = []
        if self._bearer is not None:
            error = ', error="invalid_token"' if invalid_token else ""
            schemes.append(f'Bearer realm="{REALM}"{error}')
        if users:
            schemes.append(f'Basic realm="{REALM}", charset="UTF-8"')
        return Refusal(401, f"unauthorized: {reason}", tuple(("WWW-Authenticate", s) for s in schemes))

