"""Input normalisation and record numbers (SPEC section 2)."""

import pytest

from handlers.text import normalise, parse_ref, split_command
from storage.errors import UserError

WORDS = {"报修", "我的报修", "接单", "提醒", "提醒列表", "查询"}


@pytest.mark.parametrize("raw,word,args", [
    ("报修 教学楼301 灯不亮", "报修", ["教学楼301", "灯不亮"]),
    ("报修：教学楼301 灯不亮。", "报修", ["教学楼301", "灯不亮"]),
    ("报修:教学楼301，灯不亮", "报修", ["教学楼301", "灯不亮"]),
    ("  报修\u3000教学楼３０１\u3000灯不亮  ", "报修", ["教学楼301", "灯不亮"]),
    ("接单 ＢＸ１２", "接单", ["BX12"]),
    ("接单12", "接单", ["12"]),
    ("提醒列表", "提醒列表", []),
    ("提醒 明天9：00 开会", "提醒", ["明天9:00", "开会"]),
    ("我的报修", "我的报修", []),
])
def test_split_command(raw, word, args):
    parsed = split_command(raw, WORDS)
    assert parsed is not None and parsed.word == word and parsed.args == args


def test_colons_inside_times_are_kept_and_after_keeps_punctuation():
    p = split_command("提醒：9:00 交材料，带上U盘", WORDS)
    assert p is not None and p.args[0] == "9:00"
    assert p.after(1) == "交材料，带上U盘"


def test_unknown_word():
    assert split_command("你好", WORDS) is None
    assert normalise("  ｈｅｌｌｏ。") == "hello"


@pytest.mark.parametrize("arg,n", [("BX12", 12), ("bx12", 12), ("12", 12), ("Bx7", 7)])
def test_parse_ref(arg, n):
    assert parse_ref(arg, "BX") == n


@pytest.mark.parametrize("arg", ["QJ12", "BX", "十二", "", None, "BX12a"])
def test_parse_ref_rejects(arg):
    with pytest.raises(UserError):
        parse_ref(arg, "BX")


def test_free_text_keeps_the_users_punctuation():
    p = split_command("报修 教学楼301 投影仪不亮了，开机没反应！怎么办？", WORDS)
    assert p is not None and p.args[0] == "教学楼301"
    assert p.after(1) == "投影仪不亮了，开机没反应！怎么办？"
    p = split_command("报修，教学楼301，灯不亮", WORDS)
    assert p is not None and p.args == ["教学楼301", "灯不亮"]
    p = split_command("提醒 明天９：００ 备注：带公章", WORDS)
    assert p is not None and p.args[0] == "明天9:00" and p.after(1) == "备注：带公章"
    assert split_command("报修\u200b 教学楼301 灯不亮", WORDS).args == ["教学楼301", "灯不亮"]  # type: ignore[union-attr]
