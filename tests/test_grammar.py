"""RFC 3261 section 25 grammar pieces: tokens, quoted strings, comma lists and ``;name=value`` parameters."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.grammar import (
    EMPTY_PARAMS,
    PARAMS_PATTERN,
    TOKEN_CHARS,
    WORD_CHARS,
    Params,
    find_closing_quote,
    is_token,
    is_word,
    quote,
    split_commas,
    split_outside_quotes,
    unquote,
)

TOKENS = st.text(alphabet=sorted(TOKEN_CHARS), min_size=1, max_size=12)
LWS = st.text(alphabet=" \t", max_size=3)

# --- tokens and words ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["INVITE", "z9hG4bK-776.asdhds", "a%b*c_d+e`f'g~h!i", "1"])
def test_tokens(text: str) -> None:
    assert is_token(text)


@pytest.mark.parametrize("text", ["", "a b", "a;b", "a=b", "<a>", '"a"', "a,b", "a/b", "é", "a\tb", "a:b"])
def test_non_tokens(text: str) -> None:
    assert not is_token(text)


@given(TOKENS)
def test_any_string_of_token_characters_is_a_token(text: str) -> None:
    assert is_token(text)


def test_words_are_the_call_id_alphabet() -> None:
    assert is_word("a84b4c76e66710")
    assert is_word('<weird>:"call"/[id]?{x}\\(y)')
    assert all(is_word(c) for c in WORD_CHARS)
    assert not is_word("")
    assert not is_word("a b")
    assert not is_word("a@b")  # callid = word ["@" word]: the @ is not part of a word
    assert not is_word("a;b")


# --- quoted strings -----------------------------------------------------------------------------------


@given(st.text().filter(lambda t: "\r" not in t and "\n" not in t))
def test_quote_unquote_round_trip(text: str) -> None:
    quoted = quote(text)
    assert quoted[0] == quoted[-1] == '"'
    assert unquote(quoted) == text
    assert find_closing_quote(quoted, 0) == len(quoted) - 1


@pytest.mark.parametrize(
    ("quoted", "text"),
    [
        ('""', ""),
        ('"Alice"', "Alice"),
        ('"J Rosenberg \\\\\\""', 'J Rosenberg \\"'),  # RFC 4475 section 3.1.1.1
        ('"a\\b"', "ab"),  # quoted-pair: any escaped character stands for itself
        ('"a,b;c<d>"', "a,b;c<d>"),
    ],
)
def test_unquote(quoted: str, text: str) -> None:
    assert unquote(quoted) == text


@pytest.mark.parametrize("bad", ["", '"', "abc", '"abc', 'abc"', '"a"b"', '"a\\"b"c"', '"abc\\"'])
def test_unquote_rejects_what_is_not_one_quoted_string(bad: str) -> None:
    with pytest.raises(ParseError):
        unquote(bad)


def test_find_closing_quote_skips_escapes() -> None:
    text = 'x "a\\"b" y'
    assert find_closing_quote(text, 2) == 7
    with pytest.raises(ParseError, match="unterminated"):
        find_closing_quote('"abc', 0)
    with pytest.raises(ParseError, match="unterminated"):
        find_closing_quote('"abc\\"', 0)


# --- comma lists ----------------------------------------------------------------------------------------


def test_split_outside_quotes() -> None:
    assert split_outside_quotes("a,b,c", ",") == ["a", "b", "c"]
    assert split_outside_quotes('"x,y" <sip:a>,b', ",") == ['"x,y" <sip:a>', "b"]
    assert split_outside_quotes("<sip:a;p=1,2>,<sip:b>", ",") == ["<sip:a;p=1,2>", "<sip:b>"]
    assert split_outside_quotes("a>,<b", ",") == ["a>", "<b"]  # a stray > does not unbalance the count
    assert split_outside_quotes('<sip:x?h="<">,y', ",") == ['<sip:x?h="<">', "y"]
    with pytest.raises(ParseError):
        split_outside_quotes('"a,b', ",")


def test_split_commas() -> None:
    value = ' "Smith, Bob" <sip:bob@example.com>;tag=1 ,\t<sip:carol@example.com;lr>, sip:x@y '
    assert split_commas(value) == [
        '"Smith, Bob" <sip:bob@example.com>;tag=1',
        "<sip:carol@example.com;lr>",
        "sip:x@y",
    ]
    assert split_commas("INVITE, ACK,BYE") == ["INVITE", "ACK", "BYE"]
    assert split_commas("<sip:a,b@example.com>") == ["<sip:a,b@example.com>"]


@pytest.mark.parametrize("bad", ["", " ", "a,,b", "a, ,b", "a,", ",a", '"x", '])
def test_split_commas_rejects_empty_elements(bad: str) -> None:
    with pytest.raises(ParseError):
        split_commas(bad)


@given(st.lists(st.one_of(TOKENS, TOKENS.map(lambda t: f'"{t}, {t}" <sip:{t}@h;p={t},x>')), min_size=1), LWS)
def test_split_commas_round_trip(items: list[str], ws: str) -> None:
    assert split_commas((ws + "," + ws).join(items)) == items


# --- parameters -----------------------------------------------------------------------------------------


def test_parse_and_read() -> None:
    p = Params.parse(";branch=z9hG4bK776;rport;received=192.0.2.1;maddr=[2001:db8::1]")
    assert p.get("branch") == "z9hG4bK776"
    assert p.get("rport") is None and "rport" in p
    assert p.get("received") == "192.0.2.1"
    assert p.get("maddr") == "[2001:db8::1]"
    assert p.get("ttl") is None and p.get("ttl", "1") == "1" and "ttl" not in p
    assert list(p) == [("branch", "z9hG4bK776"), ("rport", None), ("received", "192.0.2.1"), ("maddr", "[2001:db8::1]")]
    assert len(p) == 4 and p
    assert str(p) == ";branch=z9hG4bK776;rport;received=192.0.2.1;maddr=[2001:db8::1]"


def test_lws_around_semicolons_and_equals() -> None:
    text = " ;\ttag = 1918181833n ; lr ;x=\t\"a b\"\t"
    p = Params.parse(text)
    assert p.items == (("tag", "1918181833n"), ("lr", None), ("x", '"a b"'))
    assert p.get("tag") == "1918181833n"
    assert str(p) == text.rstrip(" \t")  # the text is kept as written, trailing LWS dropped


def test_tabs_do_not_leak_into_values() -> None:
    p = Params.parse(";tag=a\t;x=1")
    assert p.get("tag") == "a"
    assert Params.parse(";x=1;tag=\tb").get("tag") == "b"


def test_quoted_values_keep_quotes_and_may_hold_semicolons() -> None:
    p = Params.parse(';a="x;y=z";b;c="q\\"r"')
    assert p.get("a") == '"x;y=z"'
    assert p.get("b") is None and "b" in p
    assert p.get("c") == '"q\\"r"'
    assert "y" not in p


def test_names_are_case_insensitive_values_are_not() -> None:
    p = Params.parse(";Transport=TCP;LR")
    assert p.get("transport") == "TCP"
    assert p.get("TRANSPORT") == "TCP"
    assert "lr" in p and "Lr" in p
    assert 1 not in p


@pytest.mark.parametrize(
    ("text", "name", "present"),
    [(";lr", "lr", True), (";lr=on", "lr", True), (";lrx;lr", "lr", True), (";lrx", "lr", False), (";x=1", "lr", False),
     (";LR", "lr", True), (";x=A", "lr", False), (";lr\t;x", "lr", True), (";\tlr", "lr", True), (";x=lr", "lr", False),
     (";1", "1", True), (";a=1;b", "B", True)],
)
def test_contains_on_fresh_parameters(text: str, name: str, present: bool) -> None:
    assert (name in Params.parse(text)) is present
    assert (name in Params.checked(text)) is present


@pytest.mark.parametrize(
    ("text", "name", "value"),
    [
        (";TAG=a;tag=b", "tag", "a"),  # the first one wins, whatever the case of either
        (";tag;tag=b", "tag", None),
        (";Tag;tag=b", "tag", None),
        (";tagx=1;tag=2", "tag", "2"),
        (";x=tag;tag=2", "tag", "2"),
        (";tag=1;tag=2", "tag", "1"),
        (";x=1;Tag=2;tag=3", "tag", "2"),
    ],
)
def test_fast_and_full_lookups_agree(text: str, name: str, value: str | None) -> None:
    fresh = Params.parse(text)
    assert fresh.get(name) == value
    assert fresh.items and fresh.get(name) == value  # items parsed: the full lookup
    assert Params.checked(text).get(name) == value


@pytest.mark.parametrize(
    "bad",
    [";", ";;", ";a;;b", "a=b", ";a=", ";=b", ";a b", ";a=b c", ";a=<b>", ';a="unterminated', ";a=b;", ";a,b",
     ";a=b=c", "; ;a", ";a=\"x\"y"],
)
def test_bad_parameters(bad: str) -> None:
    assert not Params.is_valid(bad)
    with pytest.raises(ParseError):
        Params.parse(bad)


def test_empty_parameters() -> None:
    assert Params.parse("") is EMPTY_PARAMS
    assert Params.checked("") is EMPTY_PARAMS
    assert Params.is_valid("") and Params.is_valid("  ")
    blank = Params.parse("  ")
    assert not blank and len(blank) == 0 and str(blank) == ""
    assert not EMPTY_PARAMS and str(EMPTY_PARAMS) == "" and list(EMPTY_PARAMS) == []
    assert Params() == EMPTY_PARAMS


def test_equality_hash_and_repr() -> None:
    a = Params.parse(";a=1;b")
    b = Params((("a", "1"), ("b", None)))
    assert a == b and hash(a) == hash(b)
    assert a != Params.parse(";b;a=1")
    assert a != ";a=1;b"
    assert repr(b) == "Params((('a', '1'), ('b', None)))"


def test_replace_and_remove() -> None:
    p = Params.parse(";Tag=1;lr")
    q = p.replace("tag", "2")
    assert str(q) == ";Tag=2;lr"  # in place, keeping the name as written
    assert str(p.replace("rport", None)) == ";Tag=1;lr;rport"
    assert str(p.replace("lr", "x")) == ";Tag=1;lr=x"
    assert str(p.remove("TAG")) == ";lr"
    assert str(p.remove("nothing")) == ";Tag=1;lr"
    assert str(p) == ";Tag=1;lr"  # the original is untouched
    assert q.get("tag") == "2" and "lr" in q
    assert str(EMPTY_PARAMS.replace("tag", "x")) == ";tag=x"


def test_checked_keeps_text() -> None:
    p = Params.checked(" ;tag=1")
    assert str(p) == " ;tag=1" and p.get("tag") == "1"
    assert PARAMS_PATTERN  # the pattern header regexes embed


# A generated parameter: (name, value or None), with the LWS to put around its ";" and "=".
_NAMES = st.sampled_from(["tag", "TAG", "Tag", "tagx", "ta", "branch", "lr", "x", "t"])
_VALUES = st.one_of(
    st.none(),
    TOKENS,
    st.sampled_from(["192.0.2.1", "[2001:db8::1]", "tag"]),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=8).map(quote),
)
_PARAM = st.tuples(_NAMES, _VALUES, LWS, LWS, LWS, LWS)


def _render(params: list[tuple[str, str | None, str, str, str, str]], compact: bool = False) -> str:
    """The parameters as text; ``compact`` leaves out the LWS (the spelling the fast lookup handles)."""
    out = []
    for name, value, *spaces in params:
        ws1, ws2, ws3, ws4 = ("", "", "", "") if compact else spaces
        out.append(f"{ws1};{ws2}{name}" if value is None else f"{ws1};{ws2}{name}{ws3}={ws4}{value}")
    return "".join(out)


def _reference(params: list[tuple[str, str | None, str, str, str, str]], name: str) -> tuple[bool, str | None]:
    """The slow, obviously right lookup: the first parameter whose name matches, ignoring case."""
    for key, value, *_ in params:
        if key.lower() == name.lower():
            return True, value
    return False, None


@settings(max_examples=300)
@given(st.lists(_PARAM, max_size=6), _NAMES, st.booleans(), st.booleans())
def test_lookup_matches_a_slow_reference(params: list[tuple[str, str | None, str, str, str, str]], name: str,
                                         compact: bool, items_first: bool) -> None:
    text = _render(params, compact)
    p = Params.parse(text)
    if items_first:
        assert p.items == tuple((k, v) for k, v, *_ in params)
    found, value = _reference(params, name)
    assert p.get(name, "absent") == (value if found else "absent")
    assert (name in p) == found
    assert (name in Params.parse(text)) == found  # before any other lookup: the fast path
    assert str(p) == text.rstrip(" \t")


_CASED = st.tuples(st.sampled_from(["tag", "TAG", "Tag", "tagx", "x"]), st.one_of(st.none(), TOKENS))


@given(st.lists(_CASED, max_size=5), st.sampled_from(["tag", "TAG"]))
def test_lookup_of_names_repeated_in_another_case(params: list[tuple[str, str | None]], name: str) -> None:
    text = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)
    found, value = _reference([(k, v, "", "", "", "") for k, v in params], name)
    assert Params.parse(text).get(name, "absent") == (value if found else "absent")


@given(st.lists(_PARAM, max_size=6), _NAMES, TOKENS)
def test_replace_then_get(params: list[tuple[str, str | None, str, str, str, str]], name: str, value: str) -> None:
    p = Params.parse(_render(params)).replace(name, value)
    assert p.get(name) == value
    assert Params.parse(str(p)).get(name) == value
    assert name not in p.remove(name)


# --- bounded time on hostile input (RFC 3261 parsers see whatever the network sends) ---------------------

_HOSTILE = st.builds(
    lambda piece, n, tail: piece * n + tail,
    st.sampled_from([" ", "\t", ";", "; ", ";a", ";a ", ";a=", ";a=b ", ' ;a="', "\\", '"', ";a= ", ";a=b;"]),
    st.integers(min_value=1, max_value=65535),
    st.sampled_from(["", "x", ";", "=", '"', " x", "\r\n"]),
)


@settings(deadline=timedelta(seconds=1), max_examples=60)
@given(_HOSTILE)
def test_parameter_parsing_takes_linear_time(text: str) -> None:
    if Params.is_valid(text):
        Params.parse(text).get("a")
    else:
        with pytest.raises(ParseError):
            Params.parse(text)


@settings(deadline=timedelta(seconds=1), max_examples=60)
@given(_HOSTILE)
def test_list_splitting_takes_linear_time(text: str) -> None:
    with contextlib.suppress(ParseError):
        split_commas(text.replace(";", ","))


def test_quote_refuses_line_breaks() -> None:
    import pytest

    from b2bua.sip.grammar import quote

    for bad in ("a\r\nVia: x", "a\nb", "a\rb"):
        with pytest.raises(ValueError):
            quote(bad)
