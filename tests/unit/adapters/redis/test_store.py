"""The apply script and ``RedisStore.apply`` speak one set of reply codes: ``ApplyReply``."""

import re

import pytest

from portflow.adapters.redis.store import ApplyReply, lua

# A reply site: a table whose first element is a number, commented with the name it stands for.
TAGGED = re.compile(r"\{(\d+)\b[^\n]*--\s*ApplyReply\.(\w+)")
REPLY_TABLE = re.compile(r"(?:return|=)\s*\{\d+\b")


def reply_codes(script: str) -> dict[str, set[int]]:
    """Per ``ApplyReply`` name in the script's comments, the codes its sites return; raises if a
    table of a code is left without a name."""
    for line in script.splitlines():
        if REPLY_TABLE.search(line.split("--")[0]) and not TAGGED.search(line):
            raise AssertionError(f"a reply without its ApplyReply name: {line.strip()}")
    codes: dict[str, set[int]] = {}
    for code, name in TAGGED.findall(script):
        codes.setdefault(name, set()).add(int(code))
    return codes


def test_every_reply_of_the_apply_script_is_the_code_its_name_has_in_python():
    codes = reply_codes(lua("apply.lua"))
    assert codes == {reply.name: {reply.value} for reply in ApplyReply}


def test_the_seen_before_reply_is_the_table_the_script_returns_when_ids_were_seen():
    script = lua("apply.lua")
    assert re.search(r"local seen = \{2\}\s*-- ApplyReply\.SEEN_BEFORE", script)
    assert re.search(r"return seen\s*-- ApplyReply\.SEEN_BEFORE", script)


def test_a_code_changed_in_the_script_alone_no_longer_agrees():
    script = lua("apply.lua").replace("return {3}", "return {4}")
    assert reply_codes(script)["STATE_LOST"] == {4} != {ApplyReply.STATE_LOST.value}


def test_a_reply_left_without_its_name_is_caught():
    script = lua("apply.lua").replace("return {0}  -- ApplyReply.APPLIED", "return {0}")
    with pytest.raises(AssertionError, match="without its ApplyReply name"):
        reply_codes(script)
