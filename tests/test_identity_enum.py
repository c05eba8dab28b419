"""Tests for b2bua.sip.identity_enum: members hash by identity yet behave as Enum members everywhere else."""

from __future__ import annotations

import pickle

from b2bua.sip.identity_enum import IdentityEnum


class Light(IdentityEnum):
    RED = "red"
    GREEN = "green"


def test_members_are_table_keys_by_identity() -> None:
    table = {(Light.RED, "go"): Light.GREEN}
    assert table[(Light.RED, "go")] is Light.GREEN
    assert hash(Light.RED) == object.__hash__(Light.RED) and hash(Light.RED) != hash(Light.GREEN)


def test_members_stay_enum_members() -> None:
    assert Light("red") is Light.RED and Light["GREEN"] is Light.GREEN
    assert Light.RED != "red" and Light.RED != Light.GREEN and [m.value for m in Light] == ["red", "green"]
    assert pickle.loads(pickle.dumps(Light.RED)) is Light.RED
    assert {Light.RED, Light.RED, Light.GREEN} == {Light.GREEN, Light.RED}
