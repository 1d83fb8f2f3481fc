"""The `访客` line parser: fields, every validation message, and property tests (order, junk)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.errors import UserError
from storage.visitor.parse import (
    VisitorLine,
    id_check_char,
    mask_id,
    mask_phone,
    mask_text,
    parse_visitor_line,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id(first17: str) -> str:
    """GB 11643, computed here independently of the code under test."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


GOOD_ID = make_id("11010519491231002")


def wrong_check(id_number: str) -> str:
    return id_number[:17] + ("0" if id_number[17] != "0" else "1")


def test_check_char_matches_independent_computation():
    assert id_check_char("11010519491231002") == GOOD_ID[-1]


def test_full_line():
    line = parse_visitor_line(f"张三 13812341111 送货 找王老师 苏E12345 {GOOD_ID} 2人")
    assert line == VisitorLine(name="张三", phone="13812341111", purpose="送货", host="王老师", plate="苏E12345",
                               id_number=GOOD_ID, party=2)


def test_minimal_line_and_separators():
    line = parse_visitor_line("李四，13912345678，来校 参加 家长会")
    assert (line.name, line.phone, line.purpose, line.party) == ("李四", "13912345678", "来校 参加 家长会", 1)
    assert line.host is None and line.plate is None and line.id_number is None


@pytest.mark.parametrize("plate", ["苏AD12345", "苏A12345D", "京AFB1234", "粤B1234学", "苏e12345", "苏A·12345"])
def test_plates_including_new_energy(plate):
    line = parse_visitor_line(f"张三 13812341111 送货 {plate}")
    assert line.plate == plate.upper().replace("·", "") and line.purpose == "送货"


def test_host_with_hint_and_chinese_counts():
    line = parse_visitor_line("张三 13812341111 找张伟(七(3)班) 两人 开会")
    assert (line.host, line.host_hint, line.party, line.purpose) == ("张伟", "七(3)班", 2, "开会")
    assert parse_visitor_line("张三 13812341111 开会 十二人").party == 12


def test_lowercase_x_and_fullwidth():
    first17 = "32050119900101123"
    idn = make_id(first17)
    if idn.endswith("X"):
        typed = idn[:-1] + "x"
    else:
        typed = idn
    line = parse_visitor_line(f"张三　１３８１２３４１１１１　送货　{typed}")
    assert line.phone == "13812341111" and line.id_number == idn


@pytest.mark.parametrize(
    "text, expected",
    [
        ("13812341111 送货", "缺少访客姓名"),
        ("张三", "缺少手机号"),
        ("张三 送货", "缺少手机号"),
        ("张三 12812341111 送货", "手机号不对：须为大陆手机号，1开头、第二位为3-9，共11位数字"),
        ("张三 1381234111 送货", "手机号不对"),
        ("张三 138123411112 送货", "手机号不对"),
        (f"张三 13812341111 送货 {wrong_check(GOOD_ID)}", "校验位不对"),
        ("张三 13812341111 送货 110105491231002", "15位旧身份证号已停用，请登记18位身份证号"),
        ("张三 13812341111 送货 1101051949123100", "须为18位"),
        ("张三 13812341111 找王老师 苏E12345", "缺少事由"),
        ("张三 13812341111 送货 0人", "人数不对"),
        ("张三 13812341111 送货 苏E12345 苏A54321", "车牌只能写一个"),
        ("张三 13812341111 送货 找王老师 找李老师", "被访人只能写一位"),
        ("张3 13812341111 送货", "姓名「张3」不对"),
        ("", "格式：访客"),
    ],
)
def test_validation_messages(text, expected):
    with pytest.raises(UserError) as err:
        parse_visitor_line(text)
    assert expected in err.value.message
    assert "13812341111" not in err.value.message and GOOD_ID[:17] not in err.value.message


def test_masking_helpers():
    assert mask_phone("13812341111") == "138****1111"
    assert mask_id("320501199001011234") == "3205**********1234"
    assert mask_text(f"电话13812341111，证件{GOOD_ID}") == f"电话138****1111，证件{mask_id(GOOD_ID)}"
    assert parse_visitor_line("张三 13812341111 代13912345678取件").purpose == "代139****5678取件"


# --- properties ------------------------------------------------------------------------------------------

NAMES = st.sampled_from(["张三", "李四", "欧阳娜娜", "Tom", "阿卜杜·热合曼"])
PHONES = st.builds(lambda second, rest: f"1{second}{rest}", st.sampled_from("3456789"),
                   st.text("0123456789", min_size=9, max_size=9))
WORDS = st.lists(st.sampled_from(["送货", "面试", "参加家长会", "维修空调", "取文件", "送午饭", "投标"]),
                 min_size=1, max_size=4)
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
PLATES = st.one_of(
    st.builds(lambda p, c, rest: p + c + rest, st.sampled_from(PROVINCES), st.sampled_from("ABCDEFGHJK"),
              st.text(PLATE_CHARS, min_size=5, max_size=5)),
    st.builds(lambda p, c, df, rest: p + c + df + rest, st.sampled_from(PROVINCES), st.sampled_from("ABCE"),
              st.sampled_from("DF"), st.text("0123456789", min_size=5, max_size=5)),
)
IDS = st.builds(
    lambda area, born, seq: make_id(f"{area}{born:%Y%m%d}{seq}"),
    st.text("0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1930, 1, 1), max_value=date(2015, 12, 31)),
    st.text("0123456789", min_size=3, max_size=3),
)


@st.composite
def lines(draw):  # type: ignore[no-untyped-def]
    name, phone, words = draw(NAMES), draw(PHONES), draw(WORDS)
    optional: dict[str, str] = {}
    if draw(st.booleans()):
        optional["host"] = draw(st.sampled_from(["王老师", "张伟", "李校长"]))
    if draw(st.booleans()):
        optional["plate"] = draw(PLATES)
    if draw(st.booleans()):
        optional["id"] = draw(IDS)
    if draw(st.booleans()):
        optional["party"] = str(draw(st.integers(1, 99)))
    tokens = {"host": lambda v: f"找{v}", "plate": lambda v: v, "id": lambda v: v, "party": lambda v: f"{v}人"}
    extra = [tokens[k](v) for k, v in optional.items()]
    expected = VisitorLine(
        name=name, phone=phone, purpose=" ".join(words), host=optional.get("host"), plate=optional.get("plate"),
        id_number=optional.get("id"), party=int(optional.get("party", 1)),
    )
    # Interleave the optional tokens anywhere after the phone, keeping the purpose words in order.
    rest = list(words)
    for token in draw(st.permutations(extra)):
        rest.insert(draw(st.integers(0, len(rest))), token)
    sep = draw(st.sampled_from([" ", "，", "  ", ",", "　"]))
    return sep.join([name, phone, *rest]), expected


@settings(max_examples=200, deadline=None)
@given(lines())
def test_any_order_of_optional_tokens_parses_to_the_same_record(case):
    text, expected = case
    assert parse_visitor_line(text) == expected


JUNK_ALPHABET = st.sampled_from(list("张三找人苏AD京X0123456789１３８ ，,()（）·-+学") + ["13812341111", GOOD_ID, "2人"])


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(JUNK_ALPHABET, max_size=20).map("".join)))
def test_junk_never_raises_anything_but_a_user_error(text):
    try:
        line = parse_visitor_line(text)
    except UserError as exc:
        assert exc.message
        assert "13812341111" not in exc.message
    else:
        assert line.name and line.phone and line.purpose and 1 <= line.party <= 99
