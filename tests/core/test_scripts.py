"""The Lua scripts take every field name from the codec: one spelling, no duplicate to drift."""

from __future__ import annotations

import inspect

import pytest
from friday_bus.core import codec, scripts

DLQ_FIELDS = [codec.F_DLQ_REASON, codec.F_DLQ_ORIGINAL_ID, codec.F_DLQ_GROUP, codec.F_DLQ_DELIVERIES, codec.F_DLQ_AT]
ALL_SCRIPTS = ["PUBLISH", "CLAIM", "NACK", "SWEEP", "SAFE_TRIM", "DELETE_IDLE_CONSUMER", "EXTEND", "REPLAY", "COUNT_AFTER"]


@pytest.mark.parametrize("name", ["CLAIM", "NACK", "SWEEP"])
def test_dead_lettering_scripts_write_the_codec_field_names(name):
    text = getattr(scripts, name)
    for field in DLQ_FIELDS:
        assert f"'{field}'" in text, field


def test_replay_strips_the_codec_dead_letter_prefix():
    assert f"string.sub(k, 1, {len(codec.DLQ_PREFIX)}) ~= '{codec.DLQ_PREFIX}'" in scripts.REPLAY


def test_every_dead_letter_field_uses_the_prefix_the_replay_strips():
    assert all(f.startswith(codec.DLQ_PREFIX) for f in DLQ_FIELDS)
    assert not codec.F_REPLAYED_FROM.startswith(codec.DLQ_PREFIX)  # the replay passes it on purpose, by argument
    stripped = codec.strip_dead_letter_fields({f: "x" for f in DLQ_FIELDS} | {codec.F_TS: "1", codec.F_REPLAYED_FROM: "1-0", "k": "v"})
    assert stripped == {codec.F_TS: "1", "k": "v"}
    # a seed entry (no publish-time field) never gets the replay mark: a key of that name is its own
    seed = codec.strip_dead_letter_fields({f: "x" for f in DLQ_FIELDS} | {codec.F_REPLAYED_FROM: "1-0", "k": "v"})
    assert seed == {codec.F_REPLAYED_FROM: "1-0", "k": "v"}


def test_replay_marks_typed_entries_only():
    assert f"if src[i] == '{codec.F_TS}' then typed = true end" in scripts.REPLAY


@pytest.mark.parametrize("name", ALL_SCRIPTS)
def test_scripts_are_fully_rendered(name):
    assert "$" not in getattr(scripts, name)


def test_scripts_module_spells_no_field_name_itself():
    assert codec.RESERVED_PREFIX not in inspect.getsource(scripts)


def test_a_name_that_cannot_be_a_plain_lua_string_is_refused():
    with pytest.raises(ValueError):
        scripts._lua_name("it's")
