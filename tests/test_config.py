"""The configuration: embedded defaults, the TOML file, flags over it, and errors that name the setting."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from b2bua import __version__
from b2bua.__main__ import main
from b2bua.config import (
    FLAGS,
    SETTINGS,
    ApiConfig,
    CallsConfig,
    Config,
    LogConfig,
    OverloadConfig,
    SipConfig,
    StateConfig,
    TimersConfig,
    WsConfig,
    load_config,
    load_toml,
)
from b2bua.errors import ConfigError
from b2bua.sip.auth import Credentials

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
FIXED_FLAGS = ["--config", "--sip-listen", "--sip-transport", "--outbound-proxy", "--trusted", "--ws-host",
               "--ws-port", "--ws-path", "--log-level"]
SECTIONS: dict[str, type[Any]] = {"sip": SipConfig, "timers": TimersConfig, "ws": WsConfig, "api": ApiConfig,
                                  "calls": CallsConfig, "overload": OverloadConfig, "state": StateConfig,
                                  "log": LogConfig}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "call-api.toml"
    path.write_text(text)
    return str(path)


def error_of(argv: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(argv)
    return str(info.value)


def toml_error(tmp_path: Path, text: str) -> str:
    return error_of(["--config", write(tmp_path, text)])


# --- defaults -------------------------------------------------------------------------------------------------


def test_defaults_without_flags() -> None:
    config = load_config([])
    assert config == Config()
    assert config.sip.listen == (("127.0.0.1", 5080),)
    assert config.sip.transports == ("udp", "tcp")
    assert config.sip.outbound_proxy is None
    assert config.sip.trusted == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert (config.sip.user, config.sip.display_name) == ("call-api", "call-api")
    assert config.sip.user_agent == f"call-api/{__version__}"
    assert config.sip.advertised_host is None
    assert (config.sip.max_message_size, config.sip.tcp_idle_timeout) == (65535, 300.0)
    assert (config.timers.t1, config.timers.t2, config.timers.t4) == (0.5, 4.0, 5.0)
    assert (config.ws.host, config.ws.port, config.ws.path) == ("localhost", 5059, "/call-api")
    assert (config.ws.token, config.ws.origins, config.ws.max_frame, config.ws.ping_interval) == (None, (), 65536, 20.0)
    assert config.calls == CallsConfig(refer_notify_timeout=32.0, answer_timeout=60.0, max_calls=10000)
    assert config.log.level == "INFO"
    assert config.credentials == ()


def test_token_and_password_stay_out_of_repr() -> None:
    config = load_config(["--ws-token", "s3cret", "--credential", "realm:alice:pa55word"])
    assert "s3cret" not in repr(config) and "pa55word" not in repr(config)


# --- flags ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "section", "name", "expected"), [
    (["--sip-listen", "0.0.0.0:5070"], "sip", "listen", (("0.0.0.0", 5070),)),
    (["--sip-listen", "[::1]:5080"], "sip", "listen", (("::1", 5080),)),
    (["--sip-listen", "localhost:0"], "sip", "listen", (("localhost", 0),)),
    (["--sip-transport", "tcp"], "sip", "transports", ("tcp",)),
    (["--sip-transport", "UDP"], "sip", "transports", ("udp",)),
    (["--outbound-proxy", "sip:10.0.0.1;lr"], "sip", "outbound_proxy", "sip:10.0.0.1;lr"),
    (["--trusted", "10.1.2.3/8"], "sip", "trusted", (ipaddress.ip_network("10.0.0.0/8"),)),
    (["--user", "pbx"], "sip", "user", "pbx"),
    (["--display-name", "Front Desk"], "sip", "display_name", "Front Desk"),
    (["--display-name", ""], "sip", "display_name", ""),
    (["--user-agent", "acme/2"], "sip", "user_agent", "acme/2"),
    (["--advertised-host", "sip.example.com"], "sip", "advertised_host", "sip.example.com"),
    (["--advertised-host", "2001:db8::1"], "sip", "advertised_host", "[2001:db8::1]"),
    (["--advertised-host", "[2001:db8::1]"], "sip", "advertised_host", "[2001:db8::1]"),
    (["--max-message-size", "4096"], "sip", "max_message_size", 4096),
    (["--tcp-idle-timeout", "30"], "sip", "tcp_idle_timeout", 30.0),
    (["--t1", "0.1"], "timers", "t1", 0.1),
    (["--t2", "8"], "timers", "t2", 8.0),
    (["--t4", "2.5"], "timers", "t4", 2.5),
    (["--ws-host", "0.0.0.0"], "ws", "host", "0.0.0.0"),
    (["--ws-host", "[::1]"], "ws", "host", "::1"),
    (["--ws-port", "8080"], "ws", "port", 8080),
    (["--ws-port", "0"], "ws", "port", 0),
    (["--ws-path", "/rpc"], "ws", "path", "/rpc"),
    (["--ws-token", "abc.DEF-123_~+/=="], "ws", "token", "abc.DEF-123_~+/=="),
    (["--ws-origin", "https://app.example.com"], "ws", "origins", ("https://app.example.com",)),
    (["--ws-max-frame", "1048576"], "ws", "max_frame", 1048576),
    (["--ws-ping-interval", "0"], "ws", "ping_interval", 0.0),
    (["--refer-notify-timeout", "10"], "calls", "refer_notify_timeout", 10.0),
    (["--answer-timeout", "90.5"], "calls", "answer_timeout", 90.5),
    (["--max-calls", "5"], "calls", "max_calls", 5),
    (["--log-level", "debug"], "log", "level", "DEBUG"),
    (["--log-level", "Warning"], "log", "level", "WARNING"),
])
def test_each_flag_overrides_its_default(argv: list[str], section: str, name: str, expected: object) -> None:
    config = load_config(argv)
    assert getattr(getattr(config, section), name) == expected
    untouched = Config()
    for other in SECTIONS:
        if other != section:
            assert getattr(config, other) == getattr(untouched, other)


def test_credential_flag() -> None:
    config = load_config(["--credential", "example.com:alice:pa:ss", "--credential", ":bob:x"])
    assert config.credentials == (Credentials("alice", "pa:ss", "example.com"), Credentials("bob", "x", None))


def test_repeatable_flags_accumulate() -> None:
    config = load_config(["--sip-listen", "127.0.0.1:5080", "--sip-listen", "[::1]:5080",
                          "--sip-transport", "tcp", "--sip-transport", "udp",
                          "--trusted", "10.0.0.0/8", "--trusted", "fd00::/8",
                          "--ws-origin", "https://a.example", "--ws-origin", "http://localhost:3000"])
    assert config.sip.listen == (("127.0.0.1", 5080), ("::1", 5080))
    assert config.sip.transports == ("tcp", "udp")
    assert config.sip.trusted == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert config.ws.origins == ("https://a.example", "http://localhost:3000")


def test_flags_are_not_abbreviated() -> None:
    with pytest.raises(SystemExit) as info:
        load_config(["--ws-po", "1"])
    assert info.value.code == 2


# --- the TOML file --------------------------------------------------------------------------------------------

FULL = """
[sip]
listen = ["0.0.0.0:5070", "[::]:5070"]
transports = ["udp"]
outbound_proxy = "sip:proxy.example.com;lr"
trusted = ["192.0.2.0/24", "2001:db8::/32"]
user = "pbx"
display_name = "Front Desk"
user_agent = "acme/2"
advertised_host = "203.0.113.7"
max_message_size = 8192
tcp_idle_timeout = 60

[timers]
t1 = 0.25
t2 = 2
t4 = 3.5

[ws]
host = "0.0.0.0"
port = 9000
path = "/rpc"
token = "t0ken"
origins = ["https://app.example.com"]
max_frame = 131072
ping_interval = 5

[calls]
refer_notify_timeout = 16
answer_timeout = 30.0
max_calls = 100

[log]
level = "warning"

[[credentials]]
realm = "example.com"
username = "alice"
password = "secret"

[[credentials]]
username = "fallback"
password = ""
"""


def test_toml_file_sets_every_section(tmp_path: Path) -> None:
    config = load_config(["--config", write(tmp_path, FULL)])
    assert config == Config(
        sip=SipConfig(
            listen=(("0.0.0.0", 5070), ("::", 5070)), transports=("udp",),
            outbound_proxy="sip:proxy.example.com;lr",
            trusted=(ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32")),
            user="pbx", display_name="Front Desk", user_agent="acme/2", advertised_host="203.0.113.7",
            max_message_size=8192, tcp_idle_timeout=60.0),
        timers=TimersConfig(t1=0.25, t2=2.0, t4=3.5),
        ws=WsConfig(host="0.0.0.0", port=9000, path="/rpc", token="t0ken", origins=("https://app.example.com",),
                    max_frame=131072, ping_interval=5.0),
        calls=CallsConfig(refer_notify_timeout=16.0, answer_timeout=30.0, max_calls=100),
        log=LogConfig(level="WARNING"),
        credentials=(Credentials("alice", "secret", "example.com"), Credentials("fallback", "", None)),
    )
    assert isinstance(config.sip.tcp_idle_timeout, float) and isinstance(config.timers.t2, float)


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    config = load_config(["--config", write(tmp_path, "[ws]\nport = 7000\n")])
    assert config == Config(ws=WsConfig(port=7000))


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(["--config", write(tmp_path, "")]) == Config()


def test_flags_override_toml(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(["--config", path, "--ws-port", "9100", "--log-level", "error", "--t1", "0.5",
                          "--user", "other", "--credential", ":carol:pw"])
    assert config.ws.port == 9100
    assert config.log.level == "ERROR"
    assert config.timers.t1 == 0.5 and config.timers.t2 == 2.0
    assert config.sip.user == "other" and config.sip.display_name == "Front Desk"
    assert config.credentials == (Credentials("carol", "pw", None),)
    assert config.ws.host == "0.0.0.0"


def test_repeatable_flags_replace_the_toml_list(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(["--config", path, "--sip-listen", "127.0.0.1:6000", "--sip-transport", "tcp",
                          "--trusted", "10.0.0.0/8", "--ws-origin", "https://other.example"])
    assert config.sip.listen == (("127.0.0.1", 6000),)
    assert config.sip.transports == ("tcp",)
    assert config.sip.trusted == (ipaddress.ip_network("10.0.0.0/8"),)
    assert config.ws.origins == ("https://other.example",)


def test_empty_lists_in_toml(tmp_path: Path) -> None:
    config = load_config(["--config", write(tmp_path, "[sip]\ntrusted = []\n[ws]\norigins = []\n")])
    assert config.sip.trusted == () and config.ws.origins == ()


def test_load_toml_returns_the_document(tmp_path: Path) -> None:
    assert load_toml(write(tmp_path, "[ws]\nport = 1\n")) == {"ws": {"port": 1}}


# --- errors name the setting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--sip-listen", "127.0.0.1"], "--sip-listen: no port in '127.0.0.1': expected HOST:PORT"),
    (["--sip-listen", "::1:5080"], "--sip-listen: bad address '::1:5080': expected HOST:PORT, IPv6 as [::1]:5080"),
    (["--sip-listen", "127.0.0.1:70000"],
     "--sip-listen: bad address '127.0.0.1:70000': expected HOST:PORT, IPv6 as [::1]:5080"),
    (["--sip-listen", "[fe80::zz]:5080"],
     "--sip-listen: bad address '[fe80::zz]:5080': expected HOST:PORT, IPv6 as [::1]:5080"),
    (["--sip-listen", "a:1", "--sip-listen", "a:1"], "--sip-listen: an address is given twice"),
    (["--sip-transport", "sctp"], "--sip-transport: unknown transport 'sctp': expected udp or tcp"),
    (["--sip-transport", "udp", "--sip-transport", "udp"], "--sip-transport: a transport is given twice"),
    (["--outbound-proxy", "proxy.example.com"], "--outbound-proxy: not a valid URI: 'proxy.example.com'"),
    (["--outbound-proxy", "tel:+15551234"], "--outbound-proxy: must be a sip: or sips: URI, got 'tel:+15551234'"),
    (["--outbound-proxy", "sip:p.example?Subject=x"],
     "--outbound-proxy: must not carry ?headers: 'sip:p.example?Subject=x'"),
    (["--outbound-proxy", ""], "--outbound-proxy: not a valid URI: ''"),
    (["--trusted", "10.0.0.0/33"], "--trusted: not a network in CIDR notation: '10.0.0.0/33'"),
    (["--trusted", "localhost"], "--trusted: not a network in CIDR notation: 'localhost'"),
    (["--user", "a@b"], "--user: not a valid SIP user part: 'a@b'"),
    (["--user", ""], "--user: not a valid SIP user part: ''"),
    (["--display-name", "a\nb"], "--display-name: must not contain control characters"),
    (["--user-agent", ""], "--user-agent: must be non-empty text without control characters"),
    (["--advertised-host", "0.0.0.0"], "--advertised-host: must be an address peers can reach, not 0.0.0.0"),
    (["--advertised-host", "host:5060"], "--advertised-host: bad host 'host:5060' (write IPv6 in brackets)"),
    (["--advertised-host", "[1.2.3.4::]"], "--advertised-host: bad IPv6 address '[1.2.3.4::]'"),
    (["--max-message-size", "0"], "--max-message-size: must be a positive size in bytes, got 0"),
    (["--max-message-size", "1k"], "--max-message-size: must be an integer, got '1k'"),
    (["--tcp-idle-timeout", "-1"], "--tcp-idle-timeout: must be a positive number, got -1.0"),
    (["--t1", "0"], "--t1: must be a positive number, got 0.0"),
    (["--t1", "nan"], "--t1: must be a finite number, got 'nan'"),
    (["--t1", "fast"], "--t1: must be a number, got 'fast'"),
    (["--t1", "5"], "--t1: must not exceed timers.t2 (5.0 > 4.0)"),
    (["--t2", "0.1"], "timers.t1: must not exceed timers.t2 (0.5 > 0.1)"),
    (["--t4", "-5"], "--t4: must be a positive number, got -5.0"),
    (["--ws-host", ""], "--ws-host: bad host ''"),
    (["--ws-host", "bad host"], "--ws-host: bad host 'bad host'"),
    (["--ws-port", "65536"], "--ws-port: port must be 0..65535 (0: any free port), got 65536"),
    (["--ws-port", "-1"], "--ws-port: port must be 0..65535 (0: any free port), got -1"),
    (["--ws-port", "http"], "--ws-port: must be an integer, got 'http'"),
    (["--ws-path", "call-api"], "--ws-path: must start with '/' and hold no spaces, '?' or '#': 'call-api'"),
    (["--ws-path", "/a?b"], "--ws-path: must start with '/' and hold no spaces, '?' or '#': '/a?b'"),
    (["--ws-token", ""], "--ws-token: must be an RFC 6750 token: letters, digits, -._~+/ then '=' padding"),
    (["--ws-token", "has space"], "--ws-token: must be an RFC 6750 token: letters, digits, -._~+/ then '=' padding"),
    (["--ws-origin", "https://a.example/"],
     "--ws-origin: 'https://a.example/' is not an origin: expected scheme://host[:port], no path"),
    (["--ws-origin", "a.example"], "--ws-origin: 'a.example' is not an origin: expected scheme://host[:port], no path"),
    (["--ws-max-frame", "0"], "--ws-max-frame: must be a positive size in bytes, got 0"),
    (["--ws-ping-interval", "-1"], "--ws-ping-interval: must be a number of seconds >= 0, got -1.0"),
    (["--refer-notify-timeout", "0"], "--refer-notify-timeout: must be a positive number, got 0.0"),
    (["--answer-timeout", "inf"], "--answer-timeout: must be a finite number, got 'inf'"),
    (["--max-calls", "0"], "--max-calls: must be at least 1, got 0"),
    (["--min-se", "60"], "--min-se: must be at least 90 (RFC 4028 section 4), got 60"),
    (["--session-expires", "60"], "--session-expires: must be at least 90 (RFC 4028 section 4), got 60"),
    (["--session-expires", "100", "--min-se", "120"],
     "--session-expires: must not be below calls.min_se (100 < 120)"),
    (["--min-se", "0", "--lab-short-session-timers", "on"], "--min-se: must be a number of seconds from 1, got 0"),
    (["--max-duration", "-1"], "--max-duration: must be a number >= 0, got -1.0"),
    (["--idle-probe", "nan"], "--idle-probe: must be a finite number, got 'nan'"),
    (["--max-calls", "2.5"], "--max-calls: must be an integer, got '2.5'"),
    (["--log-level", "verbose"], "--log-level: unknown level 'VERBOSE': expected one of DEBUG, INFO, WARNING, ERROR"),
    (["--credential", "alice:secret"], "--credential: expected REALM:USER:PASSWORD (REALM empty for any realm)"),
    (["--credential", "realm::pw"], "--credential: must be non-empty text without control characters"),
    (["--credential", "r:a:1", "--credential", "r:b:2"], "--credential: a second entry for realm 'r'"),
    (["--credential", ":a:1", "--credential", ":b:2"], "--credential: a second entry for any realm"),
])
def test_flag_errors_name_the_flag(argv: list[str], message: str) -> None:
    assert error_of(argv) == message


def test_credential_errors_never_show_the_password() -> None:
    assert "hunter2" not in error_of(["--credential", "hunter2"])


@pytest.mark.parametrize(("text", "message"), [
    ('[sip]\nlisten = "127.0.0.1:5080"\n', "sip.listen: must be an array of strings, not a string"),
    ("[sip]\nlisten = [5080]\n", "sip.listen: must be an array of strings, but holds an integer"),
    ('[sip]\nlisten = ["nohost"]\n', "sip.listen: no port in 'nohost': expected HOST:PORT"),
    ("[sip]\nlisten = []\n", "sip.listen: needs at least one address"),
    ("[sip]\ntransports = []\n", "sip.transports: needs at least one of udp, tcp"),
    ('[sip]\ntransports = ["tls"]\n', "sip.transports: unknown transport 'tls': expected udp or tcp"),
    ('[sip]\ntrusted = ["300.0.0.0/8"]\n', "sip.trusted: not a network in CIDR notation: '300.0.0.0/8'"),
    ('[sip]\noutbound_proxy = "http://x"\n', "sip.outbound_proxy: must be a sip: or sips: URI, got 'http://x'"),
    ("[sip]\nuser = 7\n", "sip.user: must be a string, not an integer"),
    ("[sip]\nmax_message_size = 1.5\n", "sip.max_message_size: must be an integer, not a float"),
    ('[sip]\nmax_message_size = "64k"\n', "sip.max_message_size: must be an integer, not a string"),
    ("[sip]\ntcp_idle_timeout = true\n", "sip.tcp_idle_timeout: must be a number, not a boolean"),
    ("[timers]\nt1 = inf\n", "timers.t1: must be a finite number, got inf"),
    ('[timers]\nt2 = "4"\n', "timers.t2: must be a number, not a string"),
    ("[timers]\nt1 = 5\nt2 = 1\n", "timers.t1: must not exceed timers.t2 (5.0 > 1.0)"),
    ("[ws]\nport = 70000\n", "ws.port: port must be 0..65535 (0: any free port), got 70000"),
    ("[ws]\nport = true\n", "ws.port: must be an integer, not a boolean"),
    ("[ws]\nport = 2024-01-01\n", "ws.port: must be an integer, not a date or time"),
    ('[ws]\npath = "rpc"\n', "ws.path: must start with '/' and hold no spaces, '?' or '#': 'rpc'"),
    ('[ws]\ntoken = ""\n', "ws.token: must be an RFC 6750 token: letters, digits, -._~+/ then '=' padding"),
    ('[ws]\norigins = "https://a.example"\n', "ws.origins: must be an array of strings, not a string"),
    ("[calls]\nmax_calls = -3\n", "calls.max_calls: must be at least 1, got -3"),
    ('[log]\nlevel = "trace"\n', "log.level: unknown level 'TRACE': expected one of DEBUG, INFO, WARNING, ERROR"),
    ("[log]\nlevel = 10\n", "log.level: must be a string, not an integer"),
    ('sip = "x"\n', "sip: must be a table, written [sip]"),
    ("[credentials]\nusername = 'a'\n", "credentials: must be an array of tables, written [[credentials]]"),
    ("[[credentials]]\nusername = 'a'\n", "credentials[0].password: missing"),
    ("[[credentials]]\npassword = 'a'\n", "credentials[0].username: missing"),
    ("[[credentials]]\nusername = ''\npassword = 'a'\n",
     "credentials[0].username: must be non-empty text without control characters"),
    ("[[credentials]]\nusername = 'a'\npassword = 1\n", "credentials[0].password: must be a string, not an integer"),
    ("[[credentials]]\nrealm = ''\nusername = 'a'\npassword = 'b'\n",
     "credentials[0].realm: must be non-empty text (leave it out for any realm)"),
    ("[[credentials]]\nusername = 'a'\npassword = 'b'\n[[credentials]]\nusername = 'c'\npassword = 'd'\n",
     "credentials[1].realm: a second entry for any realm"),
])
def test_toml_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert toml_error(tmp_path, text) == message


@pytest.mark.parametrize(("text", "message"), [
    ("[sip]\nlistn = []\n", "sip.listn: unknown setting (did you mean sip.listen?)"),
    ("[ws]\ntokken = 'x'\n", "ws.tokken: unknown setting (did you mean ws.token?)"),
    ("[calls]\nzzz = 1\n", "calls.zzz: unknown setting"),
    ("[timer]\nt1 = 1\n", "timer: unknown setting (did you mean timers?)"),
    ("port = 5059\n", "port: unknown setting (did you mean ws.port, under [ws]?)"),
    ("[[credentials]]\nusername = 'a'\npasword = 'b'\n",
     "credentials[0].pasword: unknown setting (did you mean credentials[0].password?)"),
])
def test_unknown_keys_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    assert toml_error(tmp_path, text) == message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert error_of(["--config", str(missing)]) == f"--config: no such file: {missing}"


def test_unreadable_path(tmp_path: Path) -> None:
    assert error_of(["--config", str(tmp_path)]).startswith(f"--config: cannot read {tmp_path}: ")


def test_malformed_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[ws]\nport = \n")
    assert error_of(["--config", path]) == f"--config: {path} is not valid TOML: Invalid value (at line 2, column 8)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[sip]\ndisplay_name = "caf\xe9"\n')
    assert error_of(["--config", str(path)]) == f"--config: {path} is not UTF-8"


def test_flag_value_fixes_a_bad_toml_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[ws]\nport = 99999\n")
    assert load_config(["--config", path, "--ws-port", "1"]).ws.port == 1


def test_sections_validate_when_built_by_hand() -> None:
    with pytest.raises(ConfigError, match=r"^sip\.listen: needs at least one address$"):
        SipConfig(listen=())
    with pytest.raises(ConfigError, match=r"^ws\.port: "):
        WsConfig(port=65536)
    with pytest.raises(ConfigError, match=r"^ws\.tls_key: missing: ws\.tls_cert is set, and one needs the other$"):
        WsConfig(tls_cert="api.pem")
    with pytest.raises(ConfigError, match=r"^ws\.tls_cert: missing: ws\.tls_key is set"):
        WsConfig(tls_key="api.key")
    with pytest.raises(ConfigError, match=r"^ws\.tls_cert: must be a file name"):
        WsConfig(tls_cert="", tls_key="api.key")
    assert WsConfig(tls_cert="api.pem", tls_key="api.key").secure and not WsConfig().secure
    with pytest.raises(ConfigError, match=r"^credentials\[1\]\.realm: a second entry for realm 'r'$"):
        Config(credentials=(Credentials("a", "b", "r"), Credentials("c", "d", "r")))
    error = ConfigError("ws.port", "bad")
    assert (error.setting, error.message, str(error)) == ("ws.port", "bad", "ws.port: bad")


# --- the command ----------------------------------------------------------------------------------------------


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in [*FIXED_FLAGS, *FLAGS.values()]:
        assert re.search(rf"^\s+{re.escape(flag)}\b", out, re.MULTILINE), flag
    for default in ("127.0.0.1:5080", "udp tcp", "127.0.0.0/8 ::1/128", "localhost", "5059", "/call-api", "INFO"):
        assert f"(default: {default})" in " ".join(out.split()), default


def test_fixed_flags_map_to_their_settings() -> None:
    assert {FLAGS[k] for k in ("sip.listen", "sip.transports", "sip.outbound_proxy", "sip.trusted", "ws.host",
                               "ws.port", "ws.path", "log.level")} == set(FIXED_FLAGS) - {"--config"}


def test_every_setting_has_a_flag() -> None:
    keys = {f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in fields(cls)} | {"credentials"}
    assert set(FLAGS) == keys


def test_main_bad_setting_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ws-port", "http"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "call-api: bad configuration: --ws-port: must be an integer, got 'http'\n"
    assert captured.out == ""


def test_main_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", write(tmp_path, "[sip]\nlisten = ['x']\n")]) == 2
    assert capsys.readouterr().err == "call-api: bad configuration: sip.listen: no port in 'x': expected HOST:PORT\n"


def _command() -> list[str]:
    return [sys.executable, "-m", "b2bua"]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@pytest.mark.system
@pytest.mark.timeout(30)
def test_process_starts_on_defaults_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(_command(), cwd=ROOT, env=_environment(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "call-api ready" in line:
                break
        assert seen and "call-api ready" in seen[-1], "".join(seen)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.system
@pytest.mark.timeout(30)
def test_process_refuses_bad_configuration() -> None:
    result = subprocess.run([*_command(), "--sip-transport", "sctp"], cwd=ROOT, env=_environment(),
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert result.stderr == ("call-api: bad configuration: --sip-transport: unknown transport 'sctp': "
                             "expected udp or tcp\n")


# --- the documentation ----------------------------------------------------------------------------------------


def _docs_rows() -> dict[str, tuple[str, str]]:
    """The settings table of docs/configuration.md: TOML key -> (flag, default cell)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[3])
    return rows


def test_docs_table_lists_exactly_the_settings_with_their_flags() -> None:
    rows = _docs_rows()
    documented = {key.split("[")[0]: flag for key, (flag, _) in rows.items()}
    assert documented == dict(FLAGS)
    assert {key for key in rows if key.startswith("credentials")} == {
        "credentials[].realm", "credentials[].username", "credentials[].password"}


@pytest.mark.parametrize("key", [key for key in SETTINGS if key != "credentials"])
def test_docs_table_gives_each_default(tmp_path: Path, key: str) -> None:
    """A default written as a TOML value (in backticks) loads to the embedded default; one in words
    ("none", "the listen host") stands for None."""
    cell = _docs_rows()[key][1]
    default = SETTINGS[key].default
    if not cell.startswith("`"):
        assert default is None, f"{key}: documented as {cell!r}, but the default is {default!r}"
        return
    section, _, name = key.partition(".")
    value = cell.strip("`").replace("<version>", __version__)
    config = load_config(["--config", write(tmp_path, f"[{section}]\n{name} = {value}\n")])
    assert getattr(getattr(config, section), name) == default


def test_docs_sample_file_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert blocks
    for block in blocks:
        load_config(["--config", write(tmp_path, block)])


# --- SIP over TLS ---------------------------------------------------------------------------------------------


def test_sip_tls_settings(tmp_path: Path) -> None:
    config = load_config(["--sip-tls-listen", "127.0.0.1:5061", "--sip-tls-listen", "[::1]:5061",
                          "--sip-tls-cert", "sip.pem", "--sip-tls-key", "sip.key", "--sip-tls-verify-server", "OFF",
                          "--sip-tls-verify-client", "1"])
    sip = config.sip
    assert sip.tls_listen == (("127.0.0.1", 5061), ("::1", 5061))
    assert (sip.tls_cert, sip.tls_key, sip.tls_ca) == ("sip.pem", "sip.key", None)
    assert (sip.tls_verify_server, sip.tls_verify_client) == (False, True)
    toml = load_config(["--config", write(tmp_path, '[sip]\ntls_verify_server = false\ntls_ca = "ca.pem"\n')]).sip
    assert (toml.tls_verify_server, toml.tls_ca) == (False, "ca.pem")


@pytest.mark.parametrize(("argv", "message"), [
    (["--sip-tls-verify-server", "maybe"], "--sip-tls-verify-server: must be true or false (yes/no, on/off, 1/0), "
                                           "got 'maybe'"),
    (["--sip-tls-listen", "127.0.0.1:5061"], "sip.tls_cert: missing: a TLS listener (sip.tls_listen) needs a "
                                             "certificate and key"),
    (["--sip-tls-cert", "a.pem"], "sip.tls_key: missing: sip.tls_cert is set, and one needs the other"),
    (["--sip-tls-listen", "127.0.0.1:5080", "--sip-tls-cert", "a", "--sip-tls-key", "b"],
     "--sip-tls-listen: 127.0.0.1:5080 is also a TCP listen address: give TLS its own port"),
    (["--sip-tls-listen", "127.0.0.1"], "--sip-tls-listen: no port in '127.0.0.1': expected HOST:PORT"),
    (["--sip-tls-handshake-timeout", "0"], "--sip-tls-handshake-timeout: must be a positive number, got 0.0"),
])
def test_sip_tls_setting_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(argv)
    assert str(error.value) == message


def test_sip_tls_boolean_in_toml_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^sip\.tls_verify_client: must be a boolean, not a string$"):
        load_config(["--config", write(tmp_path, '[sip]\ntls_verify_client = "yes"\n')])
    assert load_config(["--sip-tls-listen", "127.0.0.1:5080",
                        "--sip-transport", "udp", "--sip-tls-cert", "a", "--sip-tls-key", "b"]).sip.tls_listen == (
        ("127.0.0.1", 5080),)
def test_state_settings_are_checked() -> None:
    assert load_config(["--state-dir", "/var/lib/call-api", "--on-stop", "end"]).state == StateConfig(
        "/var/lib/call-api", "end")
    assert error_of(["--on-stop", "later"]) == "--on-stop: unknown choice 'later': expected one of keep, end"
    assert error_of(["--state-dir", ""]) == "--state-dir: must be a non-empty path"


def test_lab_short_session_timers_allow_intervals_under_90_s() -> None:
    """RFC 4028's 90 s floor holds unless the lab-only setting lifts it (system tests watch refreshes in seconds)."""
    calls = load_config(["--lab-short-session-timers", "yes", "--session-expires", "10", "--min-se", "10"]).calls
    timers = calls.supervision().session_timers
    assert timers is not None and (timers.session_expires, timers.min_se) == (10, 10)
    assert load_config(["--session-timers", "no"]).calls.supervision().session_timers is None
