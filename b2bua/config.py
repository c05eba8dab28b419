"""The service configuration: one TOML file, every setting overridable by a command-line flag.

:func:`load_config` parses the command line, reads the TOML file named by ``--config`` (the only I/O
here) and returns a validated :class:`Config`. A flag beats the file, the file beats the embedded
default, and a repeatable flag, when given, replaces the file's list. Anything wrong raises
:class:`ConfigError` naming the setting: its flag when the value came from the command line, its
TOML key (``ws.port``) otherwise. Each section validates itself on construction, so a hand-built
``Config`` is as trustworthy as a loaded one. ``docs/configuration.md`` documents every setting.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, get_args

from . import __version__
from .sip.auth import Credentials
from .sip.errors import ParseError
from .sip.timers import TimerSettings
from .sip.uri import SipUri, parse_host, parse_sip_uri, parse_uri, split_hostport

Transport = Literal["udp", "tcp"]
TRANSPORTS: Final[tuple[Transport, ...]] = get_args(Transport)
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_LEVELS: Final[tuple[LogLevel, ...]] = get_args(LogLevel)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*://[^/\s?#]+\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")


class ConfigError(ValueError):
    """A bad setting. ``setting`` is its flag (``--ws-port``) when the value came from the command line,
    else its TOML key (``ws.port``, ``credentials[0].username``), or ``--config`` for the file itself."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_port(setting: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(setting, f"port must be 0..65535 (0: any free port), got {port}")


def _check_positive(setting: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(setting, f"must be a positive number, got {value}")


def _check_bind_host(setting: str, host: str) -> None:
    """A host to bind: an IP address (IPv6 without brackets) or a host name."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        if ":" in host:
            raise ParseError("bad IPv6 address")
        parse_host(host)
    except ParseError:
        raise ConfigError(setting, f"bad host {host!r}") from None


@dataclass(frozen=True, slots=True)
class SipConfig:
    """The SIP side: where the service listens, how it names itself, where it sends requests (RFC 3261)."""

    #: Addresses to listen on, as (host, port); an IPv6 host is stored bare (``::1``). Port 0 picks a free port.
    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 5080),)
    #: Transports opened on every listen address: a non-empty subset of ``udp`` and ``tcp``.
    transports: tuple[Transport, ...] = ("udp", "tcp")
    #: SIP URI every request the service originates is sent through (a pre-loaded Route, RFC 3261 8.1.2).
    outbound_proxy: str | None = None
    #: Networks whose SIP requests the service accepts as coming from a trusted peer (see docs).
    trusted: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    #: User part of the service's own URI (From of the requests it places, Contact).
    user: str = "call-api"
    #: Display name of the service in From headers; empty for none.
    display_name: str = "call-api"
    #: Value of the User-Agent and Server headers.
    user_agent: str = f"call-api/{__version__}"
    #: Host written in Via and Contact instead of the listen host (use it when listening on 0.0.0.0 or
    #: behind NAT); IPv6 in brackets. None: the listen host.
    advertised_host: str | None = None
    #: Largest SIP message accepted, in bytes; larger ones are answered 413 or dropped (RFC 3261 18.1.1).
    max_message_size: int = 65535
    #: Seconds a TCP connection may stay idle before the service closes it.
    tcp_idle_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not self.listen:
            raise ConfigError("sip.listen", "needs at least one address")
        for host, port in self.listen:
            _check_bind_host("sip.listen", host)
            _check_port("sip.listen", port)
        if len(set(self.listen)) != len(self.listen):
            raise ConfigError("sip.listen", "an address is given twice")
        if not self.transports:
            raise ConfigError("sip.transports", "needs at least one of udp, tcp")
        for transport in self.transports:
            if transport not in TRANSPORTS:
                raise ConfigError("sip.transports", f"unknown transport {transport!r}: expected udp or tcp")
        if len(set(self.transports)) != len(self.transports):
            raise ConfigError("sip.transports", "a transport is given twice")
        if self.outbound_proxy is not None:
            _parse_proxy(self.outbound_proxy)
        try:
            uri = parse_sip_uri(f"sip:{self.user}@example.invalid")
        except ParseError:
            uri = None
        if uri is None or uri.user != self.user:
            raise ConfigError("sip.user", f"not a valid SIP user part: {self.user!r}")
        if _has_control(self.display_name):
            raise ConfigError("sip.display_name", "must not contain control characters")
        if not self.user_agent or _has_control(self.user_agent):
            raise ConfigError("sip.user_agent", "must be non-empty text without control characters")
        if self.advertised_host is not None:
            _check_advertised_host(self.advertised_host)
        if self.max_message_size < 1:
            raise ConfigError("sip.max_message_size", f"must be a positive size in bytes, got {self.max_message_size}")
        _check_positive("sip.tcp_idle_timeout", self.tcp_idle_timeout)

    @property
    def outbound_proxy_uri(self) -> SipUri | None:
        """The outbound proxy parsed (it is kept as text so it prints exactly as configured)."""
        return None if self.outbound_proxy is None else _parse_proxy(self.outbound_proxy)


def _parse_proxy(text: str) -> SipUri:
    try:
        uri = parse_uri(text)
    except ParseError:
        raise ConfigError("sip.outbound_proxy", f"not a valid URI: {text!r}") from None
    if not isinstance(uri, SipUri):
        raise ConfigError("sip.outbound_proxy", f"must be a sip: or sips: URI, got {text!r}")
    if uri.headers:
        raise ConfigError("sip.outbound_proxy", f"must not carry ?headers: {text!r}")
    return uri


def _check_advertised_host(host: str) -> None:
    try:
        parse_host(host)
        address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ParseError:
        raise ConfigError("sip.advertised_host", f"bad host {host!r} (write IPv6 in brackets)") from None
    except ValueError:
        if host.startswith("["):
            raise ConfigError("sip.advertised_host", f"bad IPv6 address {host!r}") from None
        return
    if address.is_unspecified:
        raise ConfigError("sip.advertised_host", f"must be an address peers can reach, not {host}")


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """RFC 3261 T1, T2 and T4 in seconds (section 17.1.1.1, Table 4); every transaction timer derives from them."""

    #: Round-trip time estimate: first retransmission interval; transactions time out after 64*T1.
    t1: float = 0.5
    #: Longest retransmission interval for non-INVITE requests and INVITE responses.
    t2: float = 4.0
    #: Longest time a message stays in the network.
    t4: float = 5.0

    def __post_init__(self) -> None:
        _check_positive("timers.t1", self.t1)
        _check_positive("timers.t2", self.t2)
        _check_positive("timers.t4", self.t4)
        if self.t1 > self.t2:
            raise ConfigError("timers.t1", f"must not exceed timers.t2 ({self.t1} > {self.t2})")

    def timer_settings(self) -> TimerSettings:
        """The transaction layer's settings object for these values."""
        return TimerSettings(T1=self.t1, T2=self.t2, T4=self.t4)


@dataclass(frozen=True, slots=True)
class WsConfig:
    """The WebSocket JSON-RPC 2.0 front."""

    #: Host to listen on (a name such as ``localhost`` may bind several addresses).
    host: str = "localhost"
    #: Port to listen on; 0 picks a free port.
    port: int = 5059
    #: Request path clients connect to; other paths are refused.
    path: str = "/call-api"
    #: When set, clients must send ``Authorization: Bearer <token>`` (RFC 6750); None: no token needed.
    token: str | None = field(default=None, repr=False)
    #: Allowed ``Origin`` header values (``https://host[:port]``); empty: any origin, or none, is accepted.
    origins: tuple[str, ...] = ()
    #: Largest incoming WebSocket message, in bytes.
    max_frame: int = 65536
    #: Seconds between keepalive pings; 0 turns pings off.
    ping_interval: float = 20.0

    def __post_init__(self) -> None:
        _check_bind_host("ws.host", self.host)
        _check_port("ws.port", self.port)
        if not self.path.startswith("/") or any(c.isspace() or c in "?#" for c in self.path):
            raise ConfigError("ws.path", f"must start with '/' and hold no spaces, '?' or '#': {self.path!r}")
        if self.token is not None and not _TOKEN68.match(self.token):
            raise ConfigError("ws.token", "must be an RFC 6750 token: letters, digits, -._~+/ then '=' padding")
        for origin in self.origins:
            if origin != "null" and not _ORIGIN.match(origin):
                raise ConfigError("ws.origins", f"{origin!r} is not an origin: expected scheme://host[:port], no path")
        if self.max_frame < 1:
            raise ConfigError("ws.max_frame", f"must be a positive size in bytes, got {self.max_frame}")
        if not (math.isfinite(self.ping_interval) and self.ping_interval >= 0):
            raise ConfigError("ws.ping_interval", f"must be a number of seconds >= 0, got {self.ping_interval}")


@dataclass(frozen=True, slots=True)
class CallsConfig:
    """Limits and waits of the call logic."""

    #: Seconds to wait for the NOTIFY carrying a transfer's final result before giving up (RFC 3515).
    refer_notify_timeout: float = 32.0
    #: Seconds to wait for an answer to an INVITE the service places before cancelling it.
    answer_timeout: float = 60.0
    #: Most calls in progress at once; more are refused.
    max_calls: int = 10000

    def __post_init__(self) -> None:
        _check_positive("calls.refer_notify_timeout", self.refer_notify_timeout)
        _check_positive("calls.answer_timeout", self.answer_timeout)
        if self.max_calls < 1:
            raise ConfigError("calls.max_calls", f"must be at least 1, got {self.max_calls}")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Logging."""

    #: Least severe level logged: DEBUG, INFO, WARNING or ERROR (upper case here; any case in TOML and flags).
    level: LogLevel = "INFO"

    def __post_init__(self) -> None:
        if self.level not in LOG_LEVELS:
            raise ConfigError("log.level", f"unknown level {self.level!r}: expected one of {', '.join(LOG_LEVELS)}")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole service configuration, one section per TOML table."""

    #: SIP listening, identity and routing.
    sip: SipConfig = field(default_factory=SipConfig)
    #: RFC 3261 timer base values.
    timers: TimersConfig = field(default_factory=TimersConfig)
    #: The WebSocket JSON-RPC front.
    ws: WsConfig = field(default_factory=WsConfig)
    #: Call-logic limits and waits.
    calls: CallsConfig = field(default_factory=CallsConfig)
    #: Logging.
    log: LogConfig = field(default_factory=LogConfig)
    #: Digest credentials the service answers 401/407 challenges with (RFC 7616); realm None: any realm.
    credentials: tuple[Credentials, ...] = ()

    def __post_init__(self) -> None:
        realms: set[str | None] = set()
        for i, cred in enumerate(self.credentials):
            if not cred.username or _has_control(cred.username):
                raise ConfigError(f"credentials[{i}].username", "must be non-empty text without control characters")
            if _has_control(cred.password):
                raise ConfigError(f"credentials[{i}].password", "must not contain control characters")
            if cred.realm is not None and (not cred.realm or _has_control(cred.realm)):
                raise ConfigError(f"credentials[{i}].realm", "must be non-empty text (leave it out for any realm)")
            if cred.realm in realms:
                which = "any realm" if cred.realm is None else f"realm {cred.realm!r}"
                raise ConfigError(f"credentials[{i}].realm", f"a second entry for {which}")
            realms.add(cred.realm)


_SECTIONS: Final[dict[str, type[Any]]] = {
    "sip": SipConfig, "timers": TimersConfig, "ws": WsConfig, "calls": CallsConfig, "log": LogConfig,
}
_CREDENTIAL_KEYS: Final = ("realm", "username", "password")


# --- the command line -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Flag:
    key: str  # dotted TOML key
    flag: str
    metavar: str
    help: str
    repeat: bool = False

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


def _default(key: str) -> Any:
    section, _, name = key.partition(".")
    return next(f.default for f in fields(_SECTIONS[section]) if f.name == name)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(_show(v) for v in value) or "none"
    return str(value)


_LISTEN_DEFAULT = " ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in _default("sip.listen"))

#: Flag groups for ``--help``: title, then (TOML key, flag, metavar, help, repeatable).
_GROUPS: Final[tuple[tuple[str, tuple[_Flag, ...]], ...]] = (
    ("SIP ([sip])", (
        _Flag("sip.listen", "--sip-listen", "HOST:PORT",
              f"address to listen on, IPv6 as [::1]:5080; repeatable (default: {_LISTEN_DEFAULT})", True),
        _Flag("sip.transports", "--sip-transport", "{udp,tcp}",
              f"transport to open; repeatable (default: {_show(_default('sip.transports'))})", True),
        _Flag("sip.outbound_proxy", "--outbound-proxy", "URI", "SIP URI to send every request through (default: none)"),
        _Flag("sip.trusted", "--trusted", "CIDR",
              f"trusted network; repeatable (default: {_show(_default('sip.trusted'))})", True),
        _Flag("sip.user", "--user", "USER", f"user part of the service's URI (default: {_default('sip.user')})"),
        _Flag("sip.display_name", "--display-name", "NAME",
              f"display name in From (default: {_default('sip.display_name')})"),
        _Flag("sip.user_agent", "--user-agent", "TEXT",
              f"User-Agent and Server header value (default: {_default('sip.user_agent')})"),
        _Flag("sip.advertised_host", "--advertised-host", "HOST",
              "host for Via and Contact, e.g. when listening on 0.0.0.0 (default: the listen host)"),
        _Flag("sip.max_message_size", "--max-message-size", "BYTES",
              f"largest SIP message accepted (default: {_default('sip.max_message_size')})"),
        _Flag("sip.tcp_idle_timeout", "--tcp-idle-timeout", "SECONDS",
              f"close idle TCP connections after this (default: {_default('sip.tcp_idle_timeout')})"),
    )),
    ("SIP timers ([timers], RFC 3261 section 17)", (
        _Flag("timers.t1", "--t1", "SECONDS", f"T1, round-trip estimate (default: {_default('timers.t1')})"),
        _Flag("timers.t2", "--t2", "SECONDS", f"T2, retransmission cap (default: {_default('timers.t2')})"),
        _Flag("timers.t4", "--t4", "SECONDS", f"T4, network lifetime (default: {_default('timers.t4')})"),
    )),
    ("digest credentials ([[credentials]])", (
        _Flag("credentials", "--credential", "REALM:USER:PASSWORD",
              "credentials for 401/407 challenges, empty REALM for any realm; repeatable; visible to other local "
              "users, prefer the TOML file (default: none)", True),
    )),
    ("WebSocket JSON-RPC front ([ws])", (
        _Flag("ws.host", "--ws-host", "HOST", f"host to listen on (default: {_default('ws.host')})"),
        _Flag("ws.port", "--ws-port", "PORT", f"port to listen on (default: {_default('ws.port')})"),
        _Flag("ws.path", "--ws-path", "PATH", f"request path (default: {_default('ws.path')})"),
        _Flag("ws.token", "--ws-token", "TOKEN", "require 'Authorization: Bearer TOKEN' (default: none)"),
        _Flag("ws.origins", "--ws-origin", "ORIGIN", "allowed Origin; repeatable (default: any)", True),
        _Flag("ws.max_frame", "--ws-max-frame", "BYTES",
              f"largest incoming message (default: {_default('ws.max_frame')})"),
        _Flag("ws.ping_interval", "--ws-ping-interval", "SECONDS",
              f"keepalive ping interval, 0 for none (default: {_default('ws.ping_interval')})"),
    )),
    ("calls ([calls])", (
        _Flag("calls.refer_notify_timeout", "--refer-notify-timeout", "SECONDS",
              f"wait for a transfer's final NOTIFY (default: {_default('calls.refer_notify_timeout')})"),
        _Flag("calls.answer_timeout", "--answer-timeout", "SECONDS",
              f"wait for an answer to an outgoing INVITE (default: {_default('calls.answer_timeout')})"),
        _Flag("calls.max_calls", "--max-calls", "N", f"most calls at once (default: {_default('calls.max_calls')})"),
    )),
    ("logging ([log])", (
        _Flag("log.level", "--log-level", "LEVEL",
              f"DEBUG, INFO, WARNING or ERROR, any case (default: {_default('log.level')})"),
    )),
)
_FLAGS: Final[dict[str, _Flag]] = {f.key: f for _, group in _GROUPS for f in group}

#: The flag that overrides each setting, by TOML key (``"ws.port": "--ws-port"``; ``"credentials"``: the array).
FLAGS: Final[Mapping[str, str]] = {key: f.flag for key, f in _FLAGS.items()}


def build_parser() -> argparse.ArgumentParser:
    """The public command line; its names are a fixed interface (operators script them)."""
    parser = argparse.ArgumentParser(
        prog="call-api", allow_abbrev=False,
        description="Call control for VoIP developers: a SIP back-to-back user agent with a WebSocket "
                    "JSON-RPC 2.0 front.",
        epilog="A flag overrides the same setting of the TOML file; a repeatable flag, when given, replaces "
               "the file's list. Every setting is described in docs/configuration.md.")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (default: none)")
    for title, group_flags in _GROUPS:
        group = parser.add_argument_group(title)
        for f in group_flags:
            group.add_argument(f.flag, dest=f.dest, metavar=f.metavar, help=f.help,
                               action="append" if f.repeat else "store")
    return parser


# --- from TOML values and flag text to a Config --------------------------------------------------------------


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable or malformed file raises :class:`ConfigError` for ``--config``."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {path}") from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None


def _unknown(setting: str, candidates: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(setting, candidates, n=1)
    return ConfigError(setting, "unknown setting" + (f" (did you mean {close[0]}?)" if close else ""))


def _check_document(document: Mapping[str, Any]) -> None:
    """Reject unknown tables and keys (typos would otherwise be ignored silently) and misshapen sections."""
    keys = [f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in fields(cls)]
    for name, value in document.items():
        if name == "credentials":
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise ConfigError("credentials", "must be an array of tables, written [[credentials]]")
            for i, item in enumerate(value):
                for key in item:
                    if key not in _CREDENTIAL_KEYS:
                        raise _unknown(f"credentials[{i}].{key}", [f"credentials[{i}].{k}" for k in _CREDENTIAL_KEYS])
        elif name in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(name, f"must be a table, written [{name}]")
            for key in value:
                if f"{name}.{key}" not in keys:
                    raise _unknown(f"{name}.{key}", keys)
        else:
            owner = next((k for k in keys if k.endswith(f".{name}")), None)
            if owner is not None:
                raise ConfigError(name, f"unknown setting (did you mean {owner}, under [{owner.split('.')[0]}]?)")
            raise _unknown(name, [*_SECTIONS, "credentials"])


@dataclass(frozen=True, slots=True)
class _Given:
    """One setting's raw value: flag text (a str, or a list of them when repeatable) or a TOML value."""

    setting: str
    value: object
    from_flag: bool


def _kind(value: object) -> str:
    for types, name in ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a float"),
                        (list, "an array"), (dict, "a table")):
        if isinstance(value, types):
            return name
    return "a date or time"


def _text(g: _Given) -> str:
    if not isinstance(g.value, str):
        raise ConfigError(g.setting, f"must be a string, not {_kind(g.value)}")
    return g.value


def _texts(g: _Given) -> list[str]:
    if not isinstance(g.value, list):
        raise ConfigError(g.setting, f"must be an array of strings, not {_kind(g.value)}")
    for item in g.value:
        if not isinstance(item, str):
            raise ConfigError(g.setting, f"must be an array of strings, but holds {_kind(item)}")
    return g.value


def _integer(g: _Given) -> int:
    value = g.value
    if g.from_flag:
        if isinstance(value, str) and _INTEGER.match(value):
            return int(value)
        raise ConfigError(g.setting, f"must be an integer, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(g.setting, f"must be an integer, not {_kind(value)}")


def _number(g: _Given) -> float:
    value = g.value
    if g.from_flag:
        try:
            number = float(str(value))
        except ValueError:
            raise ConfigError(g.setting, f"must be a number, got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ConfigError(g.setting, f"must be a number, not {_kind(value)}")
    if not math.isfinite(number):
        raise ConfigError(g.setting, f"must be a finite number, got {value!r}")
    return number


def _listen(g: _Given) -> tuple[tuple[str, int], ...]:
    addresses = []
    for text in _texts(g):
        try:
            host, port = split_hostport(text)
        except ParseError:
            raise ConfigError(g.setting, f"bad address {text!r}: expected HOST:PORT, IPv6 as [::1]:5080") from None
        if port is None:
            raise ConfigError(g.setting, f"no port in {text!r}: expected HOST:PORT")
        addresses.append((host[1:-1] if host.startswith("[") else host, port))
    return tuple(addresses)


def _networks(g: _Given) -> tuple[IPNetwork, ...]:
    networks = []
    for text in _texts(g):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(g.setting, f"not a network in CIDR notation: {text!r}") from None
    return tuple(networks)


def _bracketed(g: _Given) -> str:
    """A host for Via/Contact: a bare IPv6 address gets its brackets."""
    text = _text(g)
    if ":" in text and not text.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(text)}]"
        except ValueError:
            pass
    return text


def _bare(g: _Given) -> str:
    """A host to bind: brackets around an IPv6 address are dropped."""
    text = _text(g)
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


_Convert = Callable[[_Given], object]
_CONVERTERS: Final[dict[str, dict[str, _Convert]]] = {
    "sip": {
        "listen": _listen,
        "transports": lambda g: tuple(t.lower() for t in _texts(g)),
        "outbound_proxy": _text,
        "trusted": _networks,
        "user": _text,
        "display_name": _text,
        "user_agent": _text,
        "advertised_host": _bracketed,
        "max_message_size": _integer,
        "tcp_idle_timeout": _number,
    },
    "timers": {"t1": _number, "t2": _number, "t4": _number},
    "ws": {
        "host": _bare,
        "port": _integer,
        "path": _text,
        "token": _text,
        "origins": lambda g: tuple(_texts(g)),
        "max_frame": _integer,
        "ping_interval": _number,
    },
    "calls": {"refer_notify_timeout": _number, "answer_timeout": _number, "max_calls": _integer},
    "log": {"level": lambda g: _text(g).upper()},
}


class _Sources:
    """The flags given and the TOML document, and which setting each flag supplied (to name it in errors)."""

    def __init__(self, args: argparse.Namespace, document: Mapping[str, Any]) -> None:
        self._args = args
        self._document = document
        self._flagged: dict[str, str] = {}

    def get(self, key: str) -> _Given | None:
        """The value for a dotted key: the flag when given, else the TOML value, else None (the default)."""
        flag = _FLAGS[key]
        value = getattr(self._args, flag.dest, None)
        if value is not None:
            self._flagged[key] = flag.flag
            return _Given(flag.flag, value, True)
        section, _, name = key.partition(".")
        table = self._document.get(section, [] if section == "credentials" else {})
        if key == "credentials":
            return _Given(key, table, False)
        if name in table:
            return _Given(key, table[name], False)
        return None

    def blame(self, exc: ConfigError) -> ConfigError:
        """The same error, naming the flag instead of the TOML key when a flag supplied the value."""
        flag = self._flagged.get(exc.setting) or self._flagged.get(exc.setting.split("[")[0])
        return exc if flag is None else ConfigError(flag, exc.message)


def _credentials(g: _Given) -> tuple[Credentials, ...]:
    """``[[credentials]]`` tables, or ``--credential REALM:USER:PASSWORD`` texts; values never appear in errors."""
    creds = []
    if g.from_flag:
        for text in _texts(g):
            realm, sep, rest = text.partition(":")
            username, sep2, password = rest.partition(":")
            if not (sep and sep2):
                raise ConfigError(g.setting, "expected REALM:USER:PASSWORD (REALM empty for any realm)")
            creds.append(Credentials(username=username, password=password, realm=realm or None))
        return tuple(creds)
    assert isinstance(g.value, list)
    for i, item in enumerate(g.value):
        for key in ("username", "password"):
            if key not in item:
                raise ConfigError(f"credentials[{i}].{key}", "missing")
        values = {key: _text(_Given(f"credentials[{i}].{key}", item[key], False)) for key in _CREDENTIAL_KEYS
                  if key in item}
        creds.append(Credentials(username=values["username"], password=values["password"], realm=values.get("realm")))
    return tuple(creds)


def build_config(args: argparse.Namespace) -> Config:
    """The Config for parsed flags: the TOML file of ``args.config`` (if any) under the flags given."""
    document = load_toml(args.config) if args.config is not None else {}
    _check_document(document)
    sources = _Sources(args, document)
    sections: dict[str, Any] = {}
    try:
        for section, converters in _CONVERTERS.items():
            values: dict[str, Any] = {}
            for name, convert in converters.items():
                given = sources.get(f"{section}.{name}")
                if given is not None:
                    values[name] = convert(given)
            sections[section] = _SECTIONS[section](**values)
        credentials = sources.get("credentials")
        assert credentials is not None
        return Config(credentials=_credentials(credentials), **sections)
    except ConfigError as exc:
        raise sources.blame(exc) from None


def load_config(argv: Sequence[str] | None = None) -> Config:
    """Parse the command line (``sys.argv[1:]`` when None) and build the Config.

    Raises :class:`ConfigError` for a bad setting; argparse exits (status 2) on an unknown flag or a
    flag without its value, and (status 0) after ``--help``.
    """
    return build_config(build_parser().parse_args(argv))
