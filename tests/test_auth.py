"""Tests for b2bua.sip.auth: digest challenges, answers and the retry rules (RFC 3261 section 22, RFC 7616)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.auth import (
    AuthHeader,
    Challenge,
    Credentials,
    DigestAuthorization,
    DigestClient,
    build_authorization,
    digest_response,
    parse_authorization,
    parse_challenge,
    parse_challenges,
    select_challenge,
    verify_authorization,
)


def md5(text: str | bytes) -> str:
    return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()


class CnonceFactory:
    """A deterministic cnonce source that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"cnonce{self.calls}"


def cnonces() -> CnonceFactory:
    return CnonceFactory()


# --- RFC worked examples -------------------------------------------------------------------------------------------

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


def test_rfc2617_section_3_5_example() -> None:
    challenge = parse_challenge(RFC2617_CHALLENGE)
    creds = Credentials("Mufasa", "Circle Of Life")
    value = build_authorization(challenge, creds, "GET", "/dir/index.html", nc=1, cnonce="0a4f113b")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert verify_authorization(parse_authorization(value), creds, "GET")


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_example(alg: str, expected: str) -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE.format(alg=alg))
    assert challenge.algorithm == alg
    assert challenge.qop == ("auth", "auth-int")
    creds = Credentials("Mufasa", "Circle of Life", realm="http-auth@example.org")
    value = build_authorization(
        challenge, creds, "GET", "/dir/index.html", nc=1, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    )
    auth = parse_authorization(value)
    assert auth.response == expected
    assert auth.algorithm == alg
    assert auth.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert verify_authorization(auth, creds, "GET")


def test_no_qop_is_rfc2069_and_matches_an_independent_computation() -> None:
    challenge = parse_challenge('Digest realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e"')
    value = build_authorization(challenge, Credentials("bob", "zanzibar"), "INVITE", "sip:bob@biloxi.com", nc=1,
                                cnonce="unused")
    auth = parse_authorization(value)
    ha1 = md5("bob:atlanta.com:zanzibar")
    assert auth.response == md5(f"{ha1}:84a4cc6f3082121f32b42a2187831a9e:{md5('INVITE:sip:bob@biloxi.com')}")
    assert auth.qop is None and auth.nc is None and auth.cnonce is None
    assert "qop" not in value and "cnonce" not in value and "opaque" not in value


def test_auth_int_hashes_the_body_only_when_auth_is_not_offered() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    auth = parse_authorization(build_authorization(challenge, Credentials("u", "p"), "INVITE", "sip:x@y", nc=2,
                                                   cnonce="c", body=body))
    ha2 = md5(f"INVITE:sip:x@y:{md5(body)}")
    assert auth.qop == "auth-int" and auth.nc == "00000002"
    assert auth.response == md5(f"{md5('u:r:p')}:n:00000002:c:auth-int:{ha2}")
    assert verify_authorization(auth, Credentials("u", "p"), "INVITE", body)
    assert not verify_authorization(auth, Credentials("u", "p"), "INVITE", body + b"x")


def test_md5_sess_independent_computation() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth", algorithm=md5-sess')
    assert challenge.algorithm == "MD5-sess"
    auth = parse_authorization(build_authorization(challenge, Credentials("u", "p"), "REGISTER", "sip:r", nc=1,
                                                   cnonce="c"))
    ha1 = md5(f"{md5('u:r:p')}:n:c")
    assert auth.response == md5(f"{ha1}:n:00000001:c:auth:{md5('REGISTER:sip:r')}")


def test_sess_without_qop_still_sends_its_cnonce() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-256-sess')
    auth = parse_authorization(build_authorization(challenge, Credentials("u", "p"), "BYE", "sip:r", nc=1,
                                                   cnonce="c"))
    assert auth.cnonce == "c" and auth.qop is None
    assert verify_authorization(auth, Credentials("u", "p"), "BYE")


def test_hand_made_challenge_algorithm_spelling_is_canonicalised() -> None:
    challenge = Challenge("Digest", realm="r", nonce="n", algorithm="md5-SESS")
    auth = parse_authorization(build_authorization(challenge, Credentials("u", "p"), "BYE", "sip:r", nc=1,
                                                   cnonce="c"))
    assert (auth.algorithm, auth.cnonce) == ("MD5-sess", "c")
    assert verify_authorization(auth, Credentials("u", "p"), "BYE")


def test_sha512_256_is_supported() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-512-256')
    auth = parse_authorization(build_authorization(challenge, Credentials("u", "p"), "BYE", "sip:r", nc=1,
                                                   cnonce="c"))
    ha1 = hashlib.new("sha512_256", b"u:r:p").hexdigest()
    ha2 = hashlib.new("sha512_256", b"BYE:sip:r").hexdigest()
    assert auth.response == hashlib.new("sha512_256", f"{ha1}:n:00000001:c:auth:{ha2}".encode()).hexdigest()


def test_userhash_sends_the_hashed_username() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256, userhash=true')
    value = build_authorization(challenge, Credentials("J\u00e4s\u00f8n Doe", "Secret, or not?"), "GET", "/", nc=1,
                                cnonce="c")
    auth = parse_authorization(value)
    assert auth.userhash
    assert auth.username == hashlib.sha256("J\u00e4s\u00f8n Doe:r".encode()).hexdigest()
    assert verify_authorization(auth, Credentials("J\u00e4s\u00f8n Doe", "Secret, or not?"), "GET")
    assert not verify_authorization(auth, Credentials("Jason Doe", "Secret, or not?"), "GET")


# --- challenge parsing ---------------------------------------------------------------------------------------------


def test_sip_challenge_with_mixed_quoting_lws_and_case() -> None:
    challenge = parse_challenge(
        'Digest  REALM = "atlanta.com" ,\tNonce=abc123 , QOP="Auth", Algorithm=sha-256, stale=TRUE, '
        'domain="sip:ss1.carrier.com sip:ss2.carrier.com", x-vendor="a,b", opaque=""'
    )
    assert challenge == Challenge(
        "Digest", realm="atlanta.com", nonce="abc123", opaque="", algorithm="SHA-256", qop=("auth",), stale=True,
        domain=("sip:ss1.carrier.com", "sip:ss2.carrier.com"),
        params=(("realm", "atlanta.com"), ("nonce", "abc123"), ("qop", "Auth"), ("algorithm", "sha-256"),
                ("stale", "TRUE"), ("domain", "sip:ss1.carrier.com sip:ss2.carrier.com"), ("x-vendor", "a,b"),
                ("opaque", "")),
    )
    assert challenge.param("X-Vendor") == "a,b" and challenge.param("missing") is None
    assert challenge.supported


def test_challenge_defaults_and_quoted_flags() -> None:
    challenge = parse_challenge('digest realm="r", nonce="n", stale="true", userhash=FALSE, qop=auth')
    assert challenge.scheme == "Digest" and challenge.algorithm == "MD5"
    assert challenge.stale and not challenge.userhash and challenge.qop == ("auth",)
    assert challenge.opaque is None and challenge.domain == ()
    assert not parse_challenge('Digest realm="r", nonce="n", stale=false').stale


def test_escaped_quotes_and_commas_in_quoted_values() -> None:
    challenge = parse_challenge(r'Digest realm="a \"quoted\", realm", nonce="x,y=z"')
    assert challenge.realm == 'a "quoted", realm' and challenge.nonce == "x,y=z"


def test_non_digest_schemes_keep_scheme_and_raw_params() -> None:
    basic = parse_challenge('Basic realm="WallyWorld"')
    assert basic == Challenge("Basic", realm="WallyWorld", params=(("realm", "WallyWorld"),))
    assert not basic.is_digest and not basic.supported
    token = parse_challenge("Negotiate YWxhZGRpbjpvcGVuc2VzYW1l==")
    assert token.token68 == "YWxhZGRpbjpvcGVuc2VzYW1l==" and token.params == ()
    assert parse_challenge("Bearer").scheme == "Bearer"


def test_several_challenges_in_one_value_and_across_values() -> None:
    found = parse_challenges([
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        'Digest realm="r", nonce="n", algorithm=SHA-256, Digest realm="r", nonce="m"',
    ])
    assert [c.scheme for c in found] == ["Newauth", "Basic", "Digest", "Digest"]
    assert found[0].params == (("realm", "apps"), ("type", "1"), ("title", 'Login to "apps"'))
    assert [c.algorithm for c in found[2:]] == ["SHA-256", "MD5"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "  ",
        "Digest",
        'Digest realm="x"',
        'Digest nonce="x"',
        'realm="x", nonce="y"',
        'Digest realm="x, nonce="y"',
        'Digest realm="x" nonce="y"',
        'Digest realm="x",, nonce="y"',
        'Digest realm="x", nonce=y z',
        'Digest realm="x", nonce=',
        'Digest realm="a", REALM="b", nonce="y"',
        'Dig@est realm="x", nonce="y"',
        "Digest abc==",
        'Digest realm "x"',
        "Basic abc=def ghi",
        'Digest realm="x", nonce="y", Basic realm="z"',
    ],
)
def test_parse_challenge_rejects_garbage(value: str) -> None:
    with pytest.raises(ParseError):
        parse_challenge(value)


def test_select_prefers_the_strongest_supported_algorithm() -> None:
    md5_first = parse_challenges(['Digest realm="r", nonce="1", algorithm=MD5',
                                  'Digest realm="r", nonce="2", algorithm=SHA-256'])
    assert select_challenge(md5_first) == md5_first[1]
    assert select_challenge(reversed(md5_first)) == md5_first[1]
    strongest = parse_challenges(['Digest realm="r", nonce="3", algorithm=SHA-256',
                                  'Digest realm="r", nonce="4", algorithm=SHA-512-256'])
    assert select_challenge(strongest) == strongest[1]
    ties = parse_challenges(['Digest realm="r", nonce="5", algorithm=SHA-256-sess',
                             'Digest realm="r", nonce="6", algorithm=SHA-256'])
    assert select_challenge(ties) == ties[0]


def test_select_skips_unsupported_and_filters_by_realm() -> None:
    found = parse_challenges([
        'Basic realm="r"',
        'Digest realm="r", nonce="1", algorithm=SHA3-512',
        'Digest realm="r", nonce="2", qop="auth-conf"',
        'Digest realm="other", nonce="3"',
    ])
    assert select_challenge(found, "r") is None
    assert select_challenge(found) == found[3]
    assert select_challenge([]) is None


# --- building and parsing Authorization ----------------------------------------------------------------------------


def test_build_refuses_what_it_cannot_answer() -> None:
    creds = Credentials("u", "p")
    with pytest.raises(ValueError, match="cannot answer"):
        build_authorization(parse_challenge('Digest realm="r", nonce="n", algorithm=FOO'), creds, "GET", "/",
                            nc=1, cnonce="c")
    with pytest.raises(ValueError, match="cannot answer"):
        build_authorization(parse_challenge('Basic realm="r"'), creds, "GET", "/", nc=1, cnonce="c")
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth"')
    with pytest.raises(ValueError, match="realm"):
        build_authorization(challenge, Credentials("u", "p", realm="elsewhere"), "GET", "/", nc=1, cnonce="c")
    for nc in (0, 2**32):
        with pytest.raises(ValueError, match="nonce count"):
            build_authorization(challenge, creds, "GET", "/", nc=nc, cnonce="c")
    with pytest.raises(ValueError, match="cnonce"):
        build_authorization(challenge, creds, "GET", "/", nc=1, cnonce="")


def test_digest_response_refuses_unknown_inputs() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        digest_response(algorithm="SHA-1", username="u", password="p", realm="r", nonce="n", method="GET", uri="/")
    with pytest.raises(ValueError, match="qop"):
        digest_response(algorithm="MD5", username="u", password="p", realm="r", nonce="n", method="GET", uri="/",
                        qop="auth-conf")


def test_parse_authorization_fields() -> None:
    auth = parse_authorization(
        'digest USERNAME="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="sip:bob@biloxi.com", qop="AUTH", nc=0000000A, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", x=y'
    )
    assert auth == DigestAuthorization(
        username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com",
        response="6629fae49393a05397450978507c4ef1", algorithm="MD5", cnonce="0a4f113b", qop="auth", nc="0000000A",
        opaque="5ccc069c403ebaf9f0171e9517f40e41", userhash=False, params=auth.params,
    )
    assert ("x", "y") in auth.params


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="r"',
        "Basic dXNlcjpwYXNz",
        'Digest username="u", realm="r", nonce="n", uri="/"',
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth, nc=1, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", nc=0000000g',
        'Digest username="u", username="v", realm="r", nonce="n", uri="/", response="x"',
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", Digest username="v"',
        'Digest username="u, realm="r"',
    ],
)
def test_parse_authorization_rejects_garbage(value: str) -> None:
    with pytest.raises(ParseError):
        parse_authorization(value)


def test_verify_rejects_wrong_password_method_realm_and_algorithm() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth"')
    auth = parse_authorization(build_authorization(challenge, Credentials("u", "p"), "INVITE", "sip:a@b", nc=1,
                                                   cnonce="c"))
    assert verify_authorization(auth, Credentials("u", "p", realm="r"), "INVITE")
    assert not verify_authorization(auth, Credentials("u", "wrong"), "INVITE")
    assert not verify_authorization(auth, Credentials("someone", "p"), "INVITE")
    assert not verify_authorization(auth, Credentials("u", "p", realm="other"), "INVITE")
    assert not verify_authorization(auth, Credentials("u", "p"), "BYE")
    unknown = parse_authorization('Digest username="u", realm="r", nonce="n", uri="/", response="x", algorithm=Foo')
    assert not verify_authorization(unknown, Credentials("u", "p"), "GET")


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("alice", "hunter2"))


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@given(
    username=_text, password=_text, realm=_text, nonce=_text, uri=_text, opaque=st.none() | _text,
    method=st.sampled_from(["INVITE", "REGISTER", "BYE", "OPTIONS", "x-Custom.Method"]),
    algorithm=st.sampled_from(["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"]),
    qop=st.sampled_from(["", "auth", "auth-int", "auth,auth-int", "auth-int, token"]),
    userhash=st.booleans(), nc=st.integers(1, 2**32 - 1), cnonce=_text.filter(bool), body=st.binary(max_size=40),
)
def test_build_then_parse_round_trips(
    username: str, password: str, realm: str, nonce: str, uri: str, opaque: str | None, method: str,
    algorithm: str, qop: str, userhash: bool, nc: int, cnonce: str, body: bytes,
) -> None:
    challenge = Challenge("Digest", realm=realm, nonce=nonce, opaque=opaque, algorithm=algorithm,
                          qop=tuple(q.strip() for q in qop.split(",") if q), userhash=userhash)
    creds = Credentials(username, password)
    auth = parse_authorization(build_authorization(challenge, creds, method, uri, nc=nc, cnonce=cnonce, body=body))
    expected_qop = "auth" if "auth" in challenge.qop else "auth-int" if challenge.qop else None
    assert (auth.realm, auth.nonce, auth.uri, auth.opaque, auth.algorithm) == (realm, nonce, uri, opaque, algorithm)
    assert auth.qop == expected_qop and auth.userhash == userhash
    assert auth.nc == (f"{nc:08x}" if expected_qop else None)
    assert auth.cnonce == (cnonce if expected_qop or algorithm.endswith("-sess") else None)
    assert (auth.username == username) != userhash
    assert verify_authorization(auth, creds, method, body)


# --- the retry state machine ---------------------------------------------------------------------------------------

CHALLENGE = 'Digest realm="atlanta.com", nonce="{nonce}", qop="auth", algorithm=MD5{extra}'
ALICE = Credentials("alice", "secret")


def challenge(nonce: str = "n1", extra: str = "") -> str:
    return CHALLENGE.format(nonce=nonce, extra=extra)


def only(headers: tuple[AuthHeader, ...] | None) -> tuple[str, DigestAuthorization]:
    assert headers is not None and len(headers) == 1
    return headers[0].name, parse_authorization(headers[0].value)


def test_401_is_answered_once_with_authorization() -> None:
    client = DigestClient([ALICE], cnonces())
    assert client.authorize("INVITE", "sip:bob@biloxi.com") == ()
    name, auth = only(client.on_challenge(401, [challenge()], "INVITE", "sip:bob@biloxi.com"))
    assert name == "Authorization"
    assert (auth.username, auth.nonce, auth.nc, auth.cnonce, auth.uri) == (
        "alice", "n1", "00000001", "cnonce1", "sip:bob@biloxi.com")
    assert verify_authorization(auth, ALICE, "INVITE")
    assert client.on_challenge(401, [challenge("n2")], "INVITE", "sip:bob@biloxi.com") is None


def test_407_is_answered_with_proxy_authorization() -> None:
    client = DigestClient([ALICE], cnonces())
    name, _ = only(client.on_challenge(407, [challenge()], "INVITE", "sip:bob@biloxi.com"))
    assert name == "Proxy-Authorization"


def test_same_nonce_again_is_a_failure_even_if_stale() -> None:
    client = DigestClient([ALICE], cnonces())
    assert client.on_challenge(401, [challenge()], "REGISTER", "sip:atlanta.com") is not None
    assert client.on_challenge(401, [challenge(extra=", stale=true")], "REGISTER", "sip:atlanta.com") is None


def test_stale_nonce_is_retried_once_with_the_new_nonce() -> None:
    factory = cnonces()
    client = DigestClient([ALICE], factory)
    client.on_challenge(401, [challenge("n1")], "REGISTER", "sip:atlanta.com")
    _, auth = only(client.on_challenge(401, [challenge("n2", ", stale=TRUE")], "REGISTER", "sip:atlanta.com"))
    assert (auth.nonce, auth.nc, auth.cnonce) == ("n2", "00000001", "cnonce2")
    assert client.on_challenge(401, [challenge("n3", ", stale=true")], "REGISTER", "sip:atlanta.com") is None
    assert factory.calls == 2


def test_a_new_request_may_be_retried_on_stale_again() -> None:
    client = DigestClient([ALICE], cnonces())
    client.on_challenge(401, [challenge("n1")], "REGISTER", "sip:atlanta.com")
    client.on_challenge(401, [challenge("n2", ", stale=true")], "REGISTER", "sip:atlanta.com")
    _, refresh = only(client.authorize("REGISTER", "sip:atlanta.com"))
    assert (refresh.nonce, refresh.nc) == ("n2", "00000002")
    _, auth = only(client.on_challenge(401, [challenge("n3", ", stale=true")], "REGISTER", "sip:atlanta.com"))
    assert (auth.nonce, auth.nc) == ("n3", "00000001")


def test_no_credentials_for_the_realm_is_a_failure() -> None:
    client = DigestClient([Credentials("alice", "secret", realm="biloxi.com")], cnonces())
    assert client.on_challenge(401, [challenge()], "INVITE", "sip:bob@biloxi.com") is None
    assert DigestClient([], cnonces()).on_challenge(401, [challenge()], "INVITE", "sip:b@c") is None


def test_realm_specific_credentials_win_over_wildcard() -> None:
    specific = Credentials("alice-atl", "x", realm="atlanta.com")
    client = DigestClient([Credentials("any", "y"), specific], cnonces())
    assert client.credentials_for("atlanta.com") == specific
    assert client.credentials_for("elsewhere") == Credentials("any", "y")
    _, auth = only(client.on_challenge(401, [challenge()], "INVITE", "sip:bob@biloxi.com"))
    assert auth.username == "alice-atl"


def test_nc_increments_while_the_nonce_is_reused() -> None:
    factory = cnonces()
    client = DigestClient([ALICE], factory)
    _, first = only(client.on_challenge(401, [challenge()], "INVITE", "sip:bob@biloxi.com"))
    _, second = only(client.authorize("BYE", "sip:bob@192.0.2.4"))
    _, third = only(client.authorize("INVITE", "sip:bob@192.0.2.4", b"v=0\r\n"))
    assert [a.nc for a in (first, second, third)] == ["00000001", "00000002", "00000003"]
    assert {a.nonce for a in (first, second, third)} == {"n1"} and factory.calls == 1
    assert second.uri == "sip:bob@192.0.2.4" and verify_authorization(second, ALICE, "BYE")


def test_no_qop_needs_no_cnonce() -> None:
    factory = cnonces()
    client = DigestClient([ALICE], factory)
    _, auth = only(client.on_challenge(401, ['Digest realm="atlanta.com", nonce="n"'], "INVITE", "sip:b@c"))
    assert auth.qop is None and factory.calls == 0


def test_proxy_then_uas_challenge_sends_both_headers() -> None:
    client = DigestClient([ALICE], cnonces())
    client.on_challenge(407, ['Digest realm="proxy.net", nonce="p1", qop="auth"'], "INVITE", "sip:b@c")
    headers = client.on_challenge(401, [challenge("u1")], "INVITE", "sip:b@c")
    assert headers is not None
    parsed = {h.name: parse_authorization(h.value) for h in headers}
    assert (parsed["Proxy-Authorization"].realm, parsed["Proxy-Authorization"].nc) == ("proxy.net", "00000002")
    assert (parsed["Authorization"].realm, parsed["Authorization"].nc) == ("atlanta.com", "00000001")


def test_forked_challenges_for_two_realms_are_both_answered() -> None:
    client = DigestClient([ALICE], cnonces())
    headers = client.on_challenge(
        407, ['Digest realm="a.net", nonce="1"', 'Digest realm="b.net", nonce="2", Basic realm="c.net"'],
        "INVITE", "sip:b@c")
    assert headers is not None
    assert [(h.name, parse_authorization(h.value).realm) for h in headers] == [
        ("Proxy-Authorization", "a.net"), ("Proxy-Authorization", "b.net")]


def test_client_answers_the_strongest_algorithm() -> None:
    client = DigestClient([ALICE], cnonces())
    _, auth = only(client.on_challenge(
        401, [challenge("m"), 'Digest realm="atlanta.com", nonce="s", qop="auth", algorithm=SHA-256'],
        "INVITE", "sip:b@c"))
    assert (auth.algorithm, auth.nonce) == ("SHA-256", "s")


def test_garbage_challenges_are_skipped() -> None:
    client = DigestClient([ALICE], cnonces())
    assert client.on_challenge(401, ['Digest realm="x', "Basic realm=\"r\""], "INVITE", "sip:b@c") is None
    _, auth = only(client.on_challenge(401, ["garbage,,", challenge()], "INVITE", "sip:b@c"))
    assert auth.nonce == "n1"


def test_auth_int_retry_covers_the_body() -> None:
    client = DigestClient([ALICE], cnonces())
    body = b"v=0\r\n"
    _, auth = only(client.on_challenge(
        401, ['Digest realm="atlanta.com", nonce="n", qop="auth-int"'], "INVITE", "sip:b@c", body))
    assert auth.qop == "auth-int" and verify_authorization(auth, ALICE, "INVITE", body)


def test_non_challenge_status_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="status"):
        DigestClient([ALICE], cnonces()).on_challenge(403, [challenge()], "INVITE", "sip:b@c")
