"""The web configuration file (`--web.config.file`) in the Prometheus exporter-toolkit format.

Operators already write this file for node_exporter and Prometheus; genai-exporter reads the same
keys with the same meaning and applies it to both listeners (metrics and OTLP):

    tls_server_config:   cert_file + key_file (or inline cert / key), client_ca_file (or client_ca),
                         client_auth_type, client_allowed_sans, min_version, max_version,
                         cipher_suites (Go names), prefer_server_cipher_suites
    http_server_config:  headers (the five the toolkit allows); http2 is accepted, HTTP/1.1 is served
    basic_auth_users:    user: bcrypt hash
    rate_limit:          interval (Go duration), burst

Like the toolkit, the file is re-read when it changes, and certificate, key and CA files when they
change, so rotated certificates and changed users apply without a restart (`WebConfigFile`).
Whether a listener speaks TLS is decided at startup. What Python's `ssl` module cannot do is
refused with the reason instead of being ignored: client_auth_type RequestClientCert and
RequireAnyClientCert (Python verifies every client certificate it asks for), and
curve_preferences. Problems are reported like the main config's: every one with its key path, in
one ConfigError (exit code 2).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_exporter.config import ConfigError, Problems, mapping_at, read_yaml, unknown_keys

LOGGER = logging.getLogger(__name__)

# The toolkit's names of TLS versions.
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
NO_CLIENT_CERT = "NoClientCert"
VERIFY_CLIENT_CERT_IF_GIVEN = "VerifyClientCertIfGiven"
REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"
_VERIFY_MODES = {
    NO_CLIENT_CERT: ssl.CERT_NONE,
    VERIFY_CLIENT_CERT_IF_GIVEN: ssl.CERT_OPTIONAL,
    REQUIRE_AND_VERIFY_CLIENT_CERT: ssl.CERT_REQUIRED,
}
# Toolkit values Python's ssl cannot honour: it verifies every client certificate it requests.
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# Go's names of the cipher suites the toolkit accepts (crypto/tls CipherSuites()), as OpenSSL
# names; TLS 1.3 suites are accepted and, as in Go, not configurable.
_TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_OPENSSL_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
# Response headers the toolkit lets a file set, with their allowed values (None: any value).
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
# A bcrypt hash as htpasswd -B and the toolkit write it: $2y$10$ + 53 characters of salt and hash.
BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_GO_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOP_LEVEL_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
_TLS_KEYS = {
    "cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
    "client_allowed_sans", "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
    "curve_preferences",
}


@dataclass(frozen=True)
class TLSServerConfig:
    """`tls_server_config`: the server certificate and how clients are authenticated by theirs."""

    cert_file: Path | None = None
    key_file: Path | None = None
    cert: str = ""
    key: str = field(default="", repr=False)
    client_ca_file: Path | None = None
    client_ca: str = ""
    client_auth_type: str = NO_CLIENT_CERT
    client_allowed_sans: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    openssl_ciphers: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True

    def files(self) -> tuple[Path, ...]:
        """Files whose change must rebuild the TLS context (rotated certificates)."""
        return tuple(path for path in (self.cert_file, self.key_file, self.client_ca_file) if path is not None)


@dataclass(frozen=True)
class RateLimit:
    """`rate_limit`: a token bucket over all requests of a listener; past it, 429."""

    interval_seconds: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    """A checked web config file; the defaults (no file) mean plain HTTP, nobody asked for credentials."""

    tls: TLSServerConfig | None = None
    headers: tuple[tuple[str, str], ...] = ()
    basic_auth_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class WebSettings:
    """A web config as it applies now: the parsed file and the TLS context built from it."""

    config: WebConfig
    tls_context: ssl.SSLContext | None


class UnusableWebConfig(Exception):
    """The web config file changed into something that cannot be used; requests are refused until fixed."""


def _string(value: Any, path: str, problems: Problems) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(path, f"must be a string, got {type(value).__name__}")
        return ""
    return value


def _file(value: Any, path: str, base_dir: Path, problems: Problems) -> Path | None:
    name = _string(value, path, problems)
    if not name:
        return None
    # Relative to the web config file's directory, as the toolkit does.
    resolved = Path(name) if Path(name).is_absolute() else base_dir / name
    if not resolved.is_file():
        problems.add(path, f"file not found: {resolved}")
    return resolved


def _string_list(value: Any, path: str, problems: Problems) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.add(path, "must be a list of strings")
        return []
    return value


def _tls_version(value: Any, path: str, default: ssl.TLSVersion, problems: Problems) -> ssl.TLSVersion:
    if value is None:
        return default
    if value not in TLS_VERSIONS:
        problems.add(path, f"must be one of {', '.join(TLS_VERSIONS)}, got {value!r}")
        return default
    return TLS_VERSIONS[value]


def _parse_tls(raw: Any, base_dir: Path, problems: Problems) -> TLSServerConfig | None:
    section = mapping_at(raw, "tls_server_config", problems)
    if not section:
        return None
    path = "tls_server_config"
    unknown_keys(section, _TLS_KEYS, path, problems)
    if "curve_preferences" in section:
        problems.add(f"{path}.curve_preferences", "not supported by genai-exporter (Python's ssl module cannot "
                                                  "set a preference list of curves): remove it to use OpenSSL's")
    cert_file = _file(section.get("cert_file"), f"{path}.cert_file", base_dir, problems)
    key_file = _file(section.get("key_file"), f"{path}.key_file", base_dir, problems)
    cert = _string(section.get("cert"), f"{path}.cert", problems)
    key = _string(section.get("key"), f"{path}.key", problems)
    for inline, from_file, name in ((cert, cert_file, "cert"), (key, key_file, "key")):
        if inline and from_file:
            problems.add(path, f"set one of {name} and {name}_file, not both")
        elif not inline and not from_file and f"{name}_file" not in section:
            problems.add(path, f"missing one of {name} or {name}_file")
    client_ca_file = _file(section.get("client_ca_file"), f"{path}.client_ca_file", base_dir, problems)
    client_ca = _string(section.get("client_ca"), f"{path}.client_ca", problems)
    if client_ca and client_ca_file:
        problems.add(path, "set one of client_ca and client_ca_file, not both")

    client_auth = _string(section.get("client_auth_type"), f"{path}.client_auth_type", problems) or NO_CLIENT_CERT
    if client_auth in _UNVERIFIED_CLIENT_AUTH:
        problems.add(f"{path}.client_auth_type", f"{client_auth} is not supported (Python's ssl module verifies "
                                                 f"every client certificate it asks for): use "
                                                 f"{VERIFY_CLIENT_CERT_IF_GIVEN} or {REQUIRE_AND_VERIFY_CLIENT_CERT}")
        client_auth = NO_CLIENT_CERT
    elif client_auth not in _VERIFY_MODES:
        problems.add(f"{path}.client_auth_type", f"must be one of {', '.join(_VERIFY_MODES)}, got {client_auth!r}")
        client_auth = NO_CLIENT_CERT
    has_ca = bool(client_ca or client_ca_file)
    if has_ca and client_auth == NO_CLIENT_CERT:
        problems.add(path, "client CAs are configured without a client_auth_type: set RequireAndVerifyClientCert")
    if client_auth != NO_CLIENT_CERT and not has_ca:
        problems.add(path, f"client_auth_type {client_auth} needs client_ca_file or client_ca to verify against")
    allowed_sans = _string_list(section.get("client_allowed_sans"), f"{path}.client_allowed_sans", problems)
    if "client_allowed_sans" in section and client_auth != REQUIRE_AND_VERIFY_CLIENT_CERT:
        problems.add(f"{path}.client_allowed_sans", f"needs client_auth_type {REQUIRE_AND_VERIFY_CLIENT_CERT}: "
                                                    "otherwise a client may send no certificate to match")

    min_version = _tls_version(section.get("min_version"), f"{path}.min_version", ssl.TLSVersion.TLSv1_2, problems)
    max_version = _tls_version(section.get("max_version"), f"{path}.max_version", ssl.TLSVersion.TLSv1_3, problems)
    if min_version > max_version:
        problems.add(path, "min_version is above max_version")
    ciphers = []
    for index, name in enumerate(_string_list(section.get("cipher_suites"), f"{path}.cipher_suites", problems)):
        if name in _OPENSSL_CIPHERS:
            ciphers.append(_OPENSSL_CIPHERS[name])
        elif name not in _TLS13_SUITES:
            problems.add(f"{path}.cipher_suites[{index}]", f"unknown cipher: {name}")
    prefer = section.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        problems.add(f"{path}.prefer_server_cipher_suites", f"must be true or false, got {prefer!r}")
        prefer = True
    return TLSServerConfig(cert_file, key_file, cert, key, client_ca_file, client_ca, client_auth,
                           tuple(allowed_sans), min_version, max_version, tuple(ciphers), prefer)


def _parse_headers(raw: Any, problems: Problems) -> tuple[tuple[str, str], ...]:
    section = mapping_at(raw, "http_server_config", problems)
    unknown_keys(section, {"http2", "headers"}, "http_server_config", problems)
    if not isinstance(section.get("http2", True), bool):
        problems.add("http_server_config.http2", f"must be true or false, got {section['http2']!r}")
    headers = []
    for name, value in mapping_at(section.get("headers"), "http_server_config.headers", problems).items():
        path = f"http_server_config.headers.{name}"
        if name not in ALLOWED_HEADERS:
            problems.add(path, f"HTTP header {name!r} can not be configured (allowed: {', '.join(ALLOWED_HEADERS)})")
        elif not isinstance(value, str) or "\r" in value or "\n" in value:
            problems.add(path, "must be a single-line string")
        elif ALLOWED_HEADERS[name] is not None and value not in ALLOWED_HEADERS[name]:
            problems.add(path, f"must be one of {', '.join(ALLOWED_HEADERS[name])}, got {value!r}")
        elif value:  # blank means unset, as in the toolkit
            headers.append((name, value))
    return tuple(headers)


def _parse_users(raw: Any, problems: Problems) -> dict[str, str]:
    users = {}
    for user, hashed in mapping_at(raw, "basic_auth_users", problems).items():
        path = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            problems.add(path, "a user name must be a non-empty string without ':'")
        elif not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            # The value is never quoted back: it could be a plain password put there by mistake.
            problems.add(path, "must be a bcrypt hash such as $2y$10$... (htpasswd -nBC 10 \"\" | tr -d ':\\n')")
        else:
            users[user] = hashed
    return users


def parse_go_duration(text: str) -> float | None:
    """Seconds of a Go duration string ("1s", "100ms", "1m30s", "0"), or None if it is not one."""
    if text == "0":
        return 0.0
    position, seconds = 0, 0.0
    while position < len(text):
        match = _GO_DURATION_PART.match(text, position)
        if match is None:
            return None
        seconds += float(match.group(1)) * _GO_DURATION_UNITS[match.group(2)]
        position = match.end()
    return seconds if text else None


def _parse_rate_limit(raw: Any, problems: Problems) -> RateLimit | None:
    section = mapping_at(raw, "rate_limit", problems)
    if not section:
        return None
    unknown_keys(section, {"interval", "burst"}, "rate_limit", problems)
    interval = section.get("interval", "0")
    seconds = parse_go_duration(interval) if isinstance(interval, str) else None
    if seconds is None:
        problems.add("rate_limit.interval", f"must be a duration such as 1s or 100ms, got {interval!r}")
        return None
    burst = section.get("burst", 0)
    if seconds == 0:
        return None  # 0 disables the rate limiter
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        problems.add("rate_limit.burst", f"must be a positive integer, got {burst!r}")
        return None
    return RateLimit(seconds, burst)


def parse_web_config(document: Any, source: str, base_dir: Path) -> WebConfig:
    """Check a parsed web config document; raise ConfigError with every problem and its key path."""
    if document is None:
        return WebConfig()
    if not isinstance(document, Mapping):
        raise ConfigError(source, [f"(top level): must be a mapping, got {type(document).__name__}"])
    problems = Problems()
    unknown_keys(document, _TOP_LEVEL_KEYS, "", problems)
    config = WebConfig(
        _parse_tls(document.get("tls_server_config"), base_dir, problems),
        _parse_headers(document.get("http_server_config"), problems),
        _parse_users(document.get("basic_auth_users"), problems),
        _parse_rate_limit(document.get("rate_limit"), problems),
    )
    if problems.items:
        raise ConfigError(source, problems.items)
    return config


@contextlib.contextmanager
def _pem_path(file: Path | None, inline: str) -> Iterator[str]:
    """A path to a PEM given as a file or inline: Python's ssl loads certificates and keys from paths only.

    Inline PEM goes to an anonymous in-memory file (Linux memfd), never to disk; elsewhere to a
    private temporary file deleted at once.
    """
    if file is not None:
        yield str(file)
        return
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("genai-exporter-pem", os.MFD_CLOEXEC)
        try:
            os.write(descriptor, inline.encode())
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    with tempfile.TemporaryDirectory(prefix="genai-exporter-") as directory:
        path = Path(directory, "pem")
        path.write_text(inline, encoding="utf-8")
        yield str(path)


def _ssl_reason(error: OSError) -> str:
    return str(getattr(error, "reason", None) or error.strerror or error)


def build_tls_context(tls: TLSServerConfig, source: str) -> ssl.SSLContext:
    """The server-side SSLContext of a tls_server_config; ConfigError when a certificate or key is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    problems = Problems()
    try:
        context.minimum_version = tls.min_version
        context.maximum_version = tls.max_version
    except (ValueError, ssl.SSLError) as error:
        problems.add("tls_server_config.min_version", f"not supported by this OpenSSL: {error}")
    try:
        with _pem_path(tls.cert_file, tls.cert) as cert, _pem_path(tls.key_file, tls.key) as key:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        problems.add("tls_server_config", f"cannot load the certificate and key: {_ssl_reason(error)}")
    if tls.openssl_ciphers:
        try:
            context.set_ciphers(":".join(tls.openssl_ciphers))
        except ssl.SSLError as error:
            problems.add("tls_server_config.cipher_suites", f"not available in this OpenSSL: {error}")
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.client_ca_file is not None or tls.client_ca:
        try:
            if tls.client_ca_file is not None:
                context.load_verify_locations(cafile=str(tls.client_ca_file))
            else:
                context.load_verify_locations(cadata=tls.client_ca)
        except (OSError, ssl.SSLError) as error:
            problems.add("tls_server_config", f"cannot load the client CA: {_ssl_reason(error)}")
    context.verify_mode = _VERIFY_MODES[tls.client_auth_type]
    if problems.items:
        raise ConfigError(source, problems.items)
    return context


def load_web_settings(path: Path) -> WebSettings:
    """Read, check and apply a web config file (TLS context included); ConfigError names every problem.

    `check-config --web.config.file` and `serve` both go through here, so a file that passes the
    check starts.
    """
    config = parse_web_config(read_yaml(path), str(path), path.parent)
    context = build_tls_context(config.tls, str(path)) if config.tls is not None else None
    return WebSettings(config, context)


def _signature(paths: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    """What tells a changed file: inode, size and modification time (a rename-into-place changes the inode)."""
    stamps = []
    for path in paths:
        try:
            status = path.stat()
            stamps.append((status.st_ino, status.st_size, status.st_mtime_ns))
        except OSError:
            stamps.append((0, -1, 0))
    return tuple(stamps)


class WebConfigFile:
    """The web config as it is now: re-read when the file, or a certificate, key or CA it names, changes.

    Every request asks `current()`, which costs a few `stat` calls when nothing changed. A file that
    changes into something unusable is logged once and makes `current()` raise until it is fixed:
    like the exporter-toolkit, the listener then refuses requests rather than fall back to an older
    file (which could still hold a revoked user).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        settings = load_web_settings(path)
        self.tls_enabled = settings.tls_context is not None
        self._paths = self._watched(settings.config)
        self._signature = _signature(self._paths)
        self._current: WebSettings | UnusableWebConfig = settings

    def _watched(self, config: WebConfig) -> tuple[Path, ...]:
        return (self.path, *(config.tls.files() if config.tls is not None else ()))

    def current(self) -> WebSettings:
        """The settings to apply to this request or connection; UnusableWebConfig if the file is broken now."""
        with self._lock:
            signature = _signature(self._paths)
            if signature != self._signature:
                self._reload(signature)
            current = self._current
        if isinstance(current, UnusableWebConfig):
            raise current
        return current

    def _reload(self, signature: tuple[tuple[int, int, int], ...]) -> None:
        self._signature = signature
        try:
            settings = load_web_settings(self.path)
        except ConfigError as error:
            self._current = UnusableWebConfig("; ".join(error.problems))
            LOGGER.error("web config %s changed and cannot be used; refusing requests until it is fixed: %s",
                         self.path, self._current)
            return
        if (settings.tls_context is not None) != self.tls_enabled:
            state = "on" if self.tls_enabled else "off"
            self._current = UnusableWebConfig(f"TLS was {state} at startup: turning it on or off needs a restart")
            LOGGER.error("web config %s changed: %s", self.path, self._current)
            return
        self._paths = self._watched(settings.config)
        # The files the new config names are watched from now on, as they are now.
        self._signature = _signature(self._paths)
        self._current = settings
        LOGGER.info("web config %s reloaded", self.path)
