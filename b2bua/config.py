"""The service configuration: one TOML file, every setting overridable by a command-line flag.

Each setting is one dataclass field of a section (:class:`SipConfig`, ``[sip]`` in TOML): its name, type,
default and docstring are the field's, and its :func:`setting` metadata gives the rest, the flag, the
``--help`` text, the converter from flag text or TOML value, and the check. The command line, the TOML
reader, the checks and :data:`SETTINGS` are all derived from those fields, so a setting is written once.

:func:`load_config` parses the command line, reads the TOML file named by ``--config`` (the only I/O
here) and returns a validated :class:`Config`. A flag beats the file, the file beats the embedded
default, and a repeatable flag, when given, replaces the file's list. Anything wrong raises
:class:`ConfigError` naming the setting: its flag when the value came from the command line, its
TOML key (``ws.port``) otherwise. Each section validates itself on construction, so a hand-built
``Config`` is as trustworthy as a loaded one. ``docs/configuration.md`` documents every setting, and
:func:`b2bua.service.build_service` hands each one to the component that uses it.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import math
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, get_args

from . import __version__
from .call.b2bua import B2buaSettings
from .call.live import DEFAULT_BUFFER
from .call.supervision import SupervisionSettings
from .errors import ConfigError, ParseError
from .sip.auth import Credentials
from .sip.overload import OverloadSettings
from .sip.session_timer import RFC_MIN_SE, SessionTimerSettings
from .sip.timers import TimerSettings
from .sip.ua import UaSettings
from .sip.uri import SipUri, parse_host, parse_sip_uri, parse_uri, split_hostport

Transport = Literal["udp", "tcp"]
TRANSPORTS: Final[tuple[Transport, ...]] = get_args(Transport)
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_LEVELS: Final[tuple[LogLevel, ...]] = get_args(LogLevel)
OnStop = Literal["keep", "end"]
ON_STOP: Final[tuple[OnStop, ...]] = get_args(OnStop)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*://[^/\s?#]+\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
#: The component defaults the settings of the same meaning take theirs from.
_CALLS: Final = B2buaSettings()
_TIMERS: Final = TimerSettings()
_UA: Final = UaSettings()
_OVERLOAD: Final = OverloadSettings()
_SUPERVISION: Final = SupervisionSettings()
_SESSION_TIMERS: Final = SessionTimerSettings()


# --- from flag text or a TOML value to a setting's value -------------------------------------------------------


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


def _text_tuple(g: _Given) -> tuple[str, ...]:
    return tuple(_texts(g))


def _lower_tuple(g: _Given) -> tuple[str, ...]:
    return tuple(t.lower() for t in _texts(g))


def _upper(g: _Given) -> str:
    return _text(g).upper()


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


_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})


def _boolean(g: _Given) -> bool:
    """A TOML boolean, or flag text: true/false, yes/no, on/off, 1/0 (any case)."""
    value = g.value
    if g.from_flag and isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(g.setting, f"must be true or false (yes/no, on/off, 1/0), got {value!r}")
    if isinstance(value, bool):
        return value
    raise ConfigError(g.setting, f"must be a boolean, not {_kind(value)}")


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


_CREDENTIAL_KEYS: Final = ("realm", "username", "password")


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


# --- checks: each returns what is wrong with a value, or None --------------------------------------------------


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _port_problem(port: int) -> str | None:
    return None if 0 <= port <= 65535 else f"port must be 0..65535 (0: any free port), got {port}"


def _positive(value: float) -> str | None:
    return None if math.isfinite(value) and value > 0 else f"must be a positive number, got {value}"


def _positive_size(value: int) -> str | None:
    return None if value >= 1 else f"must be a positive size in bytes, got {value}"


def _bind_host(host: str) -> str | None:
    """A host to bind: an IP address (IPv6 without brackets) or a host name."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        if ":" in host:
            raise ParseError("bad IPv6 address")
        parse_host(host)
    except ParseError:
        return f"bad host {host!r}"
    return None


def _listen_problem(listen: tuple[tuple[str, int], ...]) -> str | None:
    if not listen:
        return "needs at least one address"
    for host, port in listen:
        problem = _bind_host(host) or _port_problem(port)
        if problem:
            return problem
    return "an address is given twice" if len(set(listen)) != len(listen) else None


def _tls_listen_problem(listen: tuple[tuple[str, int], ...]) -> str | None:
    return _listen_problem(listen) if listen else None


def _transports_problem(transports: tuple[str, ...]) -> str | None:
    if not transports:
        return "needs at least one of udp, tcp"
    for transport in transports:
        if transport not in TRANSPORTS:
            return f"unknown transport {transport!r}: expected udp or tcp"
    return "a transport is given twice" if len(set(transports)) != len(transports) else None


def _proxy_problem(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        uri = parse_uri(text)
    except ParseError:
        return f"not a valid URI: {text!r}"
    if not isinstance(uri, SipUri):
        return f"must be a sip: or sips: URI, got {text!r}"
    return f"must not carry ?headers: {text!r}" if uri.headers else None


def _user_problem(user: str) -> str | None:
    try:
        uri = parse_sip_uri(f"sip:{user}@example.invalid")
    except ParseError:
        uri = None
    return None if uri is not None and uri.user == user else f"not a valid SIP user part: {user!r}"


def _display_name_problem(name: str) -> str | None:
    return "must not contain control characters" if _has_control(name) else None


def _user_agent_problem(text: str) -> str | None:
    return "must be non-empty text without control characters" if not text or _has_control(text) else None


def _advertised_host_problem(host: str | None) -> str | None:
    if host is None:
        return None
    try:
        parse_host(host)
        address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ParseError:
        return f"bad host {host!r} (write IPv6 in brackets)"
    except ValueError:
        return f"bad IPv6 address {host!r}" if host.startswith("[") else None
    return f"must be an address peers can reach, not {host}" if address.is_unspecified else None


def _path_problem(path: str) -> str | None:
    if path.startswith("/") and not any(c.isspace() or c in "?#" for c in path):
        return None
    return f"must start with '/' and hold no spaces, '?' or '#': {path!r}"


def _token_problem(token: str | None) -> str | None:
    if token is None or _TOKEN68.match(token):
        return None
    return "must be an RFC 6750 token: letters, digits, -._~+/ then '=' padding"


def _origins_problem(origins: tuple[str, ...]) -> str | None:
    for origin in origins:
        if origin != "null" and not _ORIGIN.match(origin):
            return f"{origin!r} is not an origin: expected scheme://host[:port], no path"
    return None


def _file_problem(path: str | None) -> str | None:
    if path is None or (path and not _has_control(path)):
        return None
    return "must be a file name, non-empty and without control characters"


def _check_pair(section: Any, prefix: str, first: str, second: str) -> None:
    """Settings that only make sense together (a certificate and its key): both given or neither."""
    one, other = getattr(section, first), getattr(section, second)
    if (one is None) != (other is None):
        missing, given = (first, second) if one is None else (second, first)
        raise ConfigError(f"{prefix}{missing}", f"missing: {prefix}{given} is set, and one needs the other")


def _ping_problem(interval: float) -> str | None:
    if math.isfinite(interval) and interval >= 0:
        return None
    return f"must be a number of seconds >= 0, got {interval}"


def _interval_problem(value: int) -> str | None:
    return None if 1 <= value <= 2**31 - 1 else f"must be a number of seconds from 1, got {value}"


def _share_problem(value: float) -> str | None:
    return None if 0 < value <= 1 else f"must be more than 0 and at most 1, got {value}"


def _at_least_zero(value: float) -> str | None:
    return None if math.isfinite(value) and value >= 0 else f"must be a number >= 0, got {value}"


def _event_buffer_problem(count: int) -> str | None:
    return None if count >= 1 else f"must be at least 1, got {count}"


def _max_calls_problem(count: int) -> str | None:
    return None if count >= 1 else f"must be at least 1, got {count}"


def _on_stop_problem(choice: str) -> str | None:
    return None if choice in ON_STOP else f"unknown choice {choice!r}: expected one of {', '.join(ON_STOP)}"


def _state_dir_problem(path: str | None) -> str | None:
    return None if path is None or (path and "\0" not in path) else "must be a non-empty path"


def _level_problem(level: str) -> str | None:
    return None if level in LOG_LEVELS else f"unknown level {level!r}: expected one of {', '.join(LOG_LEVELS)}"


# --- a setting: one field and its metadata -------------------------------------------------------------------


def _show(value: Any) -> str:
    """A default as ``--help`` prints it."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(_show(v) for v in value) or "none"
    return str(value)


def _show_hostports(value: tuple[tuple[str, int], ...]) -> str:
    return " ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in value)


@dataclass(frozen=True, slots=True)
class Setting:
    """What a configuration field carries besides its name, type, default and docstring (its metadata)."""

    #: The command-line flag (``--ws-port``); operators script these names, so they never change.
    flag: str
    #: The flag's value in ``--help`` (``PORT``).
    metavar: str
    #: The ``--help`` line, without the default (appended from the field's default).
    help: str
    #: From flag text or a TOML value to the field's value; raises :class:`ConfigError` naming the setting.
    convert: Callable[[_Given], Any]
    #: What is wrong with a value, or None; the section runs it on construction.
    check: Callable[[Any], str | None] | None = None
    #: The flag may be given several times, and then replaces the file's whole list.
    repeat: bool = False
    #: The default as ``--help`` shows it.
    show: Callable[[Any], str] = _show


_META: Final = "setting"


def setting(default: Any, flag: str, metavar: str, help: str, convert: Callable[[_Given], Any], *,
            check: Callable[[Any], str | None] | None = None, repeat: bool = False,
            show: Callable[[Any], str] = _show, secret: bool = False) -> Any:
    """A configuration field: ``default`` and its :class:`Setting` (a ``secret`` stays out of ``repr``)."""
    return field(default=default, repr=not secret,
                 metadata={_META: Setting(flag, metavar, help, convert, check, repeat, show)})


def _spec(f: Field[Any]) -> Setting:
    spec = f.metadata[_META]
    assert isinstance(spec, Setting)
    return spec


def _check_fields(section: Any, prefix: str) -> None:
    """Run every field's check; the first problem raises, named by the field's TOML key."""
    for f in fields(section):
        spec = _spec(f)
        problem = spec.check(getattr(section, f.name)) if spec.check is not None else None
        if problem:
            raise ConfigError(f"{prefix}{f.name}", problem)


# --- the sections --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipConfig:
    """The SIP side: where the service listens, how it names itself, where it sends requests (RFC 3261)."""

    #: Addresses to listen on, as (host, port); an IPv6 host is stored bare (``::1``). Port 0 picks a free port.
    listen: tuple[tuple[str, int], ...] = setting(
        (("127.0.0.1", 5080),), "--sip-listen", "HOST:PORT", "address to listen on, IPv6 as [::1]:5080; repeatable",
        _listen, check=_listen_problem, repeat=True, show=_show_hostports)
    #: Transports opened on every listen address: a non-empty subset of ``udp`` and ``tcp``.
    transports: tuple[Transport, ...] = setting(
        ("udp", "tcp"), "--sip-transport", "{udp,tcp}", "transport to open; repeatable", _lower_tuple,
        check=_transports_problem, repeat=True)
    #: SIP URI every request the service originates is sent through (a pre-loaded Route, RFC 3261 8.1.2).
    outbound_proxy: str | None = setting(
        None, "--outbound-proxy", "URI", "SIP URI to send every request through", _text, check=_proxy_problem)
    #: Networks whose SIP requests the service accepts as coming from a trusted peer (see docs).
    trusted: tuple[IPNetwork, ...] = setting(
        _UA.trusted, "--trusted", "CIDR",
        "trusted network; repeatable", _networks, repeat=True)
    #: User part of the service's own URI (From of the requests it places, Contact).
    user: str = setting(_UA.user, "--user", "USER", "user part of the service's URI", _text, check=_user_problem)
    #: Display name of the service in From headers; empty for none.
    display_name: str = setting(_UA.display_name, "--display-name", "NAME", "display name in From", _text,
                                check=_display_name_problem)
    #: Value of the User-Agent and Server headers.
    user_agent: str = setting(f"call-api/{__version__}", "--user-agent", "TEXT", "User-Agent and Server header value",
                              _text, check=_user_agent_problem)
    #: Host written in Via and Contact instead of the listen host (use it when listening on 0.0.0.0 or
    #: behind NAT); IPv6 in brackets. None: the listen host.
    advertised_host: str | None = setting(
        None, "--advertised-host", "HOST", "host for Via and Contact, e.g. when listening on 0.0.0.0", _bracketed,
        check=_advertised_host_problem, show=lambda _: "the listen host")
    #: Largest SIP message accepted, in bytes; larger ones are answered 413 or dropped (RFC 3261 18.1.1).
    max_message_size: int = setting(65535, "--max-message-size", "BYTES", "largest SIP message accepted", _integer,
                                    check=_positive_size)
    #: Seconds a TCP connection may stay idle before the service closes it.
    tcp_idle_timeout: float = setting(300.0, "--tcp-idle-timeout", "SECONDS", "close idle TCP connections after this",
                                      _number, check=_positive)
    #: Addresses to listen on for SIP over TLS (RFC 3261 section 26, ``sips:``), as (host, port); each needs
    #: its own port (5061 by convention), apart from ``listen``'s TCP. Empty: no TLS listener (outgoing TLS
    #: to ``sips:`` and ``;transport=tls`` targets still works).
    tls_listen: tuple[tuple[str, int], ...] = setting(
        (), "--sip-tls-listen", "HOST:PORT", "address to listen on for SIP over TLS, e.g. 0.0.0.0:5061; repeatable",
        _listen, check=_tls_listen_problem, repeat=True, show=lambda v: _show_hostports(v) or "none")
    #: PEM certificate chain the TLS listener presents (also offered when a TLS server asks for a client's).
    tls_cert: str | None = setting(None, "--sip-tls-cert", "FILE", "PEM certificate chain for SIP over TLS", _text,
                                   check=_file_problem)
    #: PEM private key of ``tls_cert``.
    tls_key: str | None = setting(None, "--sip-tls-key", "FILE", "PEM private key of --sip-tls-cert", _text,
                                  check=_file_problem)
    #: PEM CA file that verifies the servers the service connects to over TLS and, with ``tls_verify_client``,
    #: its TLS clients. None: the system's trusted CAs.
    tls_ca: str | None = setting(None, "--sip-tls-ca", "FILE", "PEM CA file to verify TLS peers with", _text,
                                 check=_file_problem, show=lambda _: "the system's CAs")
    #: Verify the certificate and host name of every TLS server the service connects to (RFC 5922). Turning
    #: this off is for labs only: it is logged as a warning at every start.
    tls_verify_server: bool = setting(True, "--sip-tls-verify-server", "BOOL",
                                      "verify TLS servers' certificates and names; false for labs only", _boolean)
    #: Ask TLS clients for a certificate, and refuse those without one ``tls_ca`` (or the system) trusts.
    tls_verify_client: bool = setting(False, "--sip-tls-verify-client", "BOOL",
                                      "require a trusted client certificate on the TLS listener", _boolean)
    #: Seconds a TLS handshake may take, accepted or outgoing; a client stalling longer is cut off.
    tls_handshake_timeout: float = setting(10.0, "--sip-tls-handshake-timeout", "SECONDS",
                                           "longest TLS handshake", _number, check=_positive)

    def __post_init__(self) -> None:
        _check_fields(self, "sip.")
        _check_pair(self, "sip.", "tls_cert", "tls_key")
        if self.tls_listen and self.tls_cert is None:
            raise ConfigError("sip.tls_cert", "missing: a TLS listener (sip.tls_listen) needs a certificate and key")
        if "tcp" in self.transports:
            shared = [f"{h}:{p}" for h, p in self.tls_listen if (h, p) in self.listen and p != 0]
            if shared:
                raise ConfigError("sip.tls_listen", f"{shared[0]} is also a TCP listen address: give TLS its own port")


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """RFC 3261 T1, T2 and T4 in seconds (section 17.1.1.1, Table 4); every transaction timer derives from them."""

    #: Round-trip time estimate: first retransmission interval; transactions time out after 64*T1.
    t1: float = setting(_TIMERS.T1, "--t1", "SECONDS", "T1, round-trip estimate", _number, check=_positive)
    #: Longest retransmission interval for non-INVITE requests and INVITE responses.
    t2: float = setting(_TIMERS.T2, "--t2", "SECONDS", "T2, retransmission cap", _number, check=_positive)
    #: Longest time a message stays in the network.
    t4: float = setting(_TIMERS.T4, "--t4", "SECONDS", "T4, network lifetime", _number, check=_positive)

    def __post_init__(self) -> None:
        _check_fields(self, "timers.")
        if self.t1 > self.t2:
            raise ConfigError("timers.t1", f"must not exceed timers.t2 ({self.t1} > {self.t2})")


@dataclass(frozen=True, slots=True)
class WsConfig:
    """The WebSocket JSON-RPC 2.0 front."""

    #: Host to listen on (a name such as ``localhost`` may bind several addresses).
    host: str = setting("localhost", "--ws-host", "HOST", "host to listen on", _bare, check=_bind_host)
    #: Port to listen on; 0 picks a free port.
    port: int = setting(5059, "--ws-port", "PORT", "port to listen on", _integer, check=_port_problem)
    #: Request path clients connect to; other paths are refused.
    path: str = setting("/call-api", "--ws-path", "PATH", "request path", _text, check=_path_problem)
    #: When set, clients must send ``Authorization: Bearer <token>`` (RFC 6750); None: no token needed.
    token: str | None = setting(None, "--ws-token", "TOKEN", "require 'Authorization: Bearer TOKEN'", _text,
                                check=_token_problem, secret=True)
    #: Allowed ``Origin`` header values (``https://host[:port]``); empty: any origin, or none, is accepted.
    origins: tuple[str, ...] = setting((), "--ws-origin", "ORIGIN", "allowed Origin; repeatable", _text_tuple,
                                       check=_origins_problem, repeat=True, show=lambda _: "any")
    #: Largest incoming WebSocket message, in bytes.
    max_frame: int = setting(65536, "--ws-max-frame", "BYTES", "largest incoming message", _integer,
                             check=_positive_size)
    #: Seconds between keepalive pings; 0 turns pings off.
    ping_interval: float = setting(20.0, "--ws-ping-interval", "SECONDS", "keepalive ping interval, 0 for none",
                                   _number, check=_ping_problem)
    #: With a token set: let clients from the trusted networks (``sip.trusted``) read ``/metrics`` and
    #: ``/healthz`` without it (a Prometheus scraper, a load balancer's probe); others still need it.
    metrics_public: bool = setting(False, "--ws-metrics-public", "BOOL",
                                   "/metrics and /healthz without the token from the trusted networks", _boolean,
                                   show=lambda v: str(v).lower())
    #: Offer permessage-deflate (RFC 7692) to clients. Off by default: the API's frames are small JSON, and
    #: deflating each one costs the service 2-4 us per frame on the event loop the calls share (a subscriber
    #: gets six a call); turn it on for dashboards behind a slow link.
    compression: bool = setting(False, "--ws-compression", "BOOL", "offer permessage-deflate to clients", _boolean,
                                show=lambda v: str(v).lower())
    #: PEM certificate (the leaf, then its chain) the API presents; with ``tls_key`` the front serves ``wss://``
    #: instead of ``ws://``. None: plain ``ws://`` (keep that on loopback).
    tls_cert: str | None = setting(None, "--ws-tls-cert", "FILE", "PEM certificate chain: serve wss://", _text,
                                   check=_file_problem)
    #: PEM private key of ``tls_cert``.
    tls_key: str | None = setting(None, "--ws-tls-key", "FILE", "PEM private key of --ws-tls-cert", _text,
                                  check=_file_problem)

    def __post_init__(self) -> None:
        _check_fields(self, "ws.")
        _check_pair(self, "ws.", "tls_cert", "tls_key")

    @property
    def secure(self) -> bool:
        """Does the front speak TLS (``wss://``)?"""
        return self.tls_cert is not None


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """What the Call API keeps for its clients (the live call state: docs/API.md)."""

    #: Call events kept for ``Subscribe {"since": N}``: a client that was away for more events than this must
    #: start again from ``CallList``.
    event_buffer: int = setting(DEFAULT_BUFFER, "--event-buffer", "N", "call events kept for resync", _integer,
                                check=_event_buffer_problem)

    def __post_init__(self) -> None:
        _check_fields(self, "api.")


@dataclass(frozen=True, slots=True)
class CallsConfig:
    """Limits and waits of the call logic."""

    #: Seconds to wait for the NOTIFY carrying a transfer's final result before giving up (RFC 3515).
    refer_notify_timeout: float = setting(_CALLS.refer_notify_timeout, "--refer-notify-timeout", "SECONDS",
                                          "wait for a transfer's final NOTIFY", _number, check=_positive)
    #: Seconds to wait for an answer to an INVITE the service places before cancelling it.
    answer_timeout: float = setting(_CALLS.answer_timeout, "--answer-timeout", "SECONDS",
                                    "wait for an answer to an outgoing INVITE", _number, check=_positive)
    #: Most calls in progress at once; more are refused.
    max_calls: int = setting(_CALLS.max_calls, "--max-calls", "N", "most calls at once", _integer,
                             check=_max_calls_problem)
    #: RFC 4028 session timers on each leg: Session-Expires asked for and granted, refreshes, BYE when missed.
    session_timers: bool = setting(True, "--session-timers", "BOOL", "RFC 4028 session timers on each leg",
                                   _boolean)
    #: The Session-Expires (seconds) the service asks for and grants (RFC 4028 section 4: at least Min-SE).
    session_expires: int = setting(_SESSION_TIMERS.session_expires, "--session-expires", "SECONDS",
                                   "session timer interval asked for and granted", _integer, check=_interval_problem)
    #: The smallest session interval (seconds) accepted: a request asking less gets 422 (RFC 4028: at least 90).
    min_se: int = setting(_SESSION_TIMERS.min_se, "--min-se", "SECONDS", "smallest session interval accepted",
                          _integer, check=_interval_problem)
    #: Lab only: let ``session_expires`` and ``min_se`` go below RFC 4028's 90 s floor, for tests that watch
    #: several refreshes in seconds. Never in production: phones may refuse it, and it breaks the RFC.
    lab_short_session_timers: bool = setting(False, "--lab-short-session-timers", "BOOL",
                                             "LAB ONLY: allow session intervals under 90 s", _boolean)
    #: Seconds from answer after which the service ends a call on both legs; 0: no limit.
    max_duration: float = setting(_SUPERVISION.max_duration, "--max-duration", "SECONDS",
                                  "end calls this long after answer, 0 for never", _number, check=_at_least_zero)
    #: Seconds without an in-dialog request after which the legs without a session timer get an in-dialog
    #: OPTIONS (408, 481 or no answer ends the call); 0: no probing.
    idle_probe: float = setting(_SUPERVISION.idle_probe, "--idle-probe", "SECONDS",
                                "probe legs without session timers after this idle time, 0 for never", _number,
                                check=_at_least_zero)

    def __post_init__(self) -> None:
        _check_fields(self, "calls.")
        if not self.lab_short_session_timers:
            for name in ("min_se", "session_expires"):
                if getattr(self, name) < RFC_MIN_SE:
                    raise ConfigError(f"calls.{name}", f"must be at least {RFC_MIN_SE} (RFC 4028 section 4), "
                                      f"got {getattr(self, name)}")
        if self.session_expires < self.min_se:
            raise ConfigError("calls.session_expires",
                              f"must not be below calls.min_se ({self.session_expires} < {self.min_se})")

    def supervision(self) -> SupervisionSettings:
        """The call logic's session timers, duration limit and reaper."""
        timers = SessionTimerSettings(self.session_expires, self.min_se) if self.session_timers else None
        return SupervisionSettings(session_timers=timers, max_duration=self.max_duration,
                                   idle_probe=self.idle_probe)


@dataclass(frozen=True, slots=True)
class OverloadConfig:
    """Overload control (b2bua.sip.overload, docs/RELIABILITY.md): when messages wait too long in the
    service's own queue, new calls get 503 with Retry-After while the calls in progress go on."""

    #: Queue delay (seconds) above which new INVITEs are answered 503; 0 turns overload control off.
    high: float = setting(_OVERLOAD.high, "--overload-high", "SECONDS",
                          "queue delay above which new calls get 503, 0 for never", _number, check=_at_least_zero)
    #: Seconds every measurement must stay above ``high`` before shedding (a standing queue, not a burst).
    sustain: float = setting(_OVERLOAD.sustain, "--overload-sustain", "SECONDS",
                             "shed only when the delay stays above --overload-high this long", _number,
                             check=_positive)
    #: Queue delay (seconds) under which the service counts as calm again.
    low: float = setting(_OVERLOAD.low, "--overload-low", "SECONDS", "queue delay under which the service is calm",
                         _number, check=_positive)
    #: Seconds the delay must stay under ``low`` before new calls are admitted again.
    calm: float = setting(_OVERLOAD.calm, "--overload-calm", "SECONDS", "calm this long before admitting again",
                          _number, check=_positive)
    #: A standing queue while the loop thread ran less than this share of the time is the host's doing
    #: (starvation), excused like a stall rather than shed.
    busy: float = setting(_OVERLOAD.busy, "--overload-busy", "SHARE",
                          "a queue standing while the service ran less than this share of the time is excused",
                          _number, check=_share_problem)
    #: Retry-After of the 503, in whole seconds; 0 sends no Retry-After.
    retry_after: int = setting(_OVERLOAD.retry_after, "--overload-retry-after", "SECONDS",
                               "Retry-After of the 503, 0 for none", _integer, check=_at_least_zero)

    def __post_init__(self) -> None:
        _check_fields(self, "overload.")
        if self.high and self.low > self.high:
            raise ConfigError("overload.low", f"must not exceed overload.high ({self.low} > {self.high})")

    def settings(self) -> OverloadSettings | None:
        """The controller's settings, or None when overload control is off."""
        if not self.high:
            return None
        return OverloadSettings(high=self.high, sustain=self.sustain, low=self.low, calm=self.calm,
                                busy=self.busy, retry_after=self.retry_after)


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Keeping answered calls across a restart (docs/RELIABILITY.md, "Restart")."""

    #: Directory of the call store (``calls.sqlite3``); unset: calls live in memory only and a restart loses them.
    dir: str | None = setting(None, "--state-dir", "DIR", "keep answered calls here across restarts", _text,
                              check=_state_dir_problem)
    #: On SIGTERM with a state directory: ``keep`` the calls for the next start (no BYE, an upgrade-restart)
    #: or ``end`` them with BYE as without one.
    on_stop: OnStop = setting("keep", "--on-stop", "keep|end", "on SIGTERM, keep calls for the next start or end "
                              "them (with --state-dir)", _text, check=_on_stop_problem)

    def __post_init__(self) -> None:
        _check_fields(self, "state.")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Logging."""

    #: Least severe level logged: DEBUG, INFO, WARNING or ERROR (upper case here; any case in TOML and flags).
    level: LogLevel = setting("INFO", "--log-level", "LEVEL", "DEBUG, INFO, WARNING or ERROR, any case", _upper,
                              check=_level_problem)

    def __post_init__(self) -> None:
        _check_fields(self, "log.")


def _title(title: str) -> Any:
    """A section field of :class:`Config`: its ``--help`` group title (the TOML table is the field's name)."""
    return {"title": title}


@dataclass(frozen=True, slots=True)
class Config:
    """The whole service configuration, one section per TOML table."""

    #: SIP listening, identity and routing.
    sip: SipConfig = field(default_factory=SipConfig, metadata=_title("SIP"))
    #: RFC 3261 timer base values.
    timers: TimersConfig = field(default_factory=TimersConfig, metadata=_title("SIP timers, RFC 3261 section 17"))
    #: The WebSocket JSON-RPC front.
    ws: WsConfig = field(default_factory=WsConfig, metadata=_title("WebSocket JSON-RPC front"))
    #: What the API keeps for its clients.
    api: ApiConfig = field(default_factory=ApiConfig, metadata=_title("Call API"))
    #: Call-logic limits and waits.
    calls: CallsConfig = field(default_factory=CallsConfig, metadata=_title("calls"))
    #: Overload control.
    overload: OverloadConfig = field(default_factory=OverloadConfig, metadata=_title("overload control"))
    #: The call store.
    state: StateConfig = field(default_factory=StateConfig, metadata=_title("call state across restarts"))
    #: Logging.
    log: LogConfig = field(default_factory=LogConfig, metadata=_title("logging"))
    #: Digest credentials the service answers 401/407 challenges with (RFC 7616); realm None: any realm.
    credentials: tuple[Credentials, ...] = setting(
        (), "--credential", "REALM:USER:PASSWORD",
        "credentials for 401/407 challenges, empty REALM for any realm; repeatable; visible to other local "
        "users, prefer the TOML file", _credentials, repeat=True)

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


# --- derived from the fields ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One setting as the command line, the TOML reader and the documentation see it."""

    #: The TOML key: ``table.name``, or ``credentials`` for the array of tables.
    key: str
    #: The embedded default.
    default: Any
    spec: Setting

    @property
    def flag(self) -> str:
        return self.spec.flag

    @property
    def dest(self) -> str:
        return self.spec.flag[2:].replace("-", "_")


def _sections() -> Iterator[tuple[str, str, type[Any]]]:
    """(TOML table, ``--help`` title, section class) for each section field of :class:`Config`."""
    for f in fields(Config):
        if f.default_factory is not MISSING:
            yield f.name, f.metadata["title"], f.default_factory  # type: ignore[misc]


_SECTIONS: Final[dict[str, type[Any]]] = {name: cls for name, _, cls in _sections()}
#: Every setting by TOML key, in ``--help`` order.
SETTINGS: Final[Mapping[str, SettingInfo]] = {
    info.key: info for info in [
        *(SettingInfo(f"{name}.{f.name}", f.default, _spec(f)) for name, cls in _SECTIONS.items() for f in fields(cls)),
        *(SettingInfo(f.name, f.default, _spec(f)) for f in fields(Config) if f.default_factory is MISSING),
    ]
}
#: The flag that overrides each setting, by TOML key (``"ws.port": "--ws-port"``; ``"credentials"``: the array).
FLAGS: Final[Mapping[str, str]] = {key: info.flag for key, info in SETTINGS.items()}


def build_parser() -> argparse.ArgumentParser:
    """The public command line; its names are a fixed interface (operators script them)."""
    parser = argparse.ArgumentParser(
        prog="call-api", allow_abbrev=False,
        description="Call control for VoIP developers: a SIP back-to-back user agent with a WebSocket "
                    "JSON-RPC 2.0 front.",
        epilog="A flag overrides the same setting of the TOML file; a repeatable flag, when given, replaces "
               "the file's list. Every setting is described in docs/configuration.md.")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (default: none)")
    parser.add_argument("--version", action="version", version=f"call-api {__version__}")
    groups = {name: parser.add_argument_group(f"{title} ([{name}])") for name, title, _ in _sections()}
    groups["credentials"] = parser.add_argument_group("digest credentials ([[credentials]])")
    for info in SETTINGS.values():
        spec = info.spec
        groups[info.key.partition(".")[0]].add_argument(
            spec.flag, dest=info.dest, metavar=spec.metavar, help=f"{spec.help} (default: {spec.show(info.default)})",
            action="append" if spec.repeat else "store")
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


class _Sources:
    """The flags given and the TOML document, and which setting each flag supplied (to name it in errors)."""

    def __init__(self, args: argparse.Namespace, document: Mapping[str, Any]) -> None:
        self._args = args
        self._document = document
        self._flagged: dict[str, str] = {}

    def get(self, key: str) -> _Given | None:
        """The value for a dotted key: the flag when given, else the TOML value, else None (the default)."""
        info = SETTINGS[key]
        value = getattr(self._args, info.dest, None)
        if value is not None:
            self._flagged[key] = info.flag
            return _Given(info.flag, value, True)
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


def build_config(args: argparse.Namespace) -> Config:
    """The Config for parsed flags: the TOML file of ``args.config`` (if any) under the flags given."""
    document = load_toml(args.config) if args.config is not None else {}
    _check_document(document)
    sources = _Sources(args, document)
    sections: dict[str, Any] = {}
    try:
        for section, cls in _SECTIONS.items():
            values: dict[str, Any] = {}
            for f in fields(cls):
                given = sources.get(f"{section}.{f.name}")
                if given is not None:
                    values[f.name] = _spec(f).convert(given)
            sections[section] = cls(**values)
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
