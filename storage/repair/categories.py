"""Repair categories and the keywords that guess them from a report's text — data, not code branches.

To teach the bot a new word, add it to a tuple below (`guess_category` reads them). Longer keywords win over shorter ones they contain
(`电脑` is 信息化 although it contains `电`; `柜门` is 家具 although it contains `门`), and words in
`NEUTRAL` are removed first because they name places, not faults (`门卫室` is not a door problem).
"""

from __future__ import annotations

__all__ = ["CATEGORIES", "KEYWORDS", "NEUTRAL", "OTHER", "guess_category"]

OTHER = "其他"

# Order matters only for ties: the first category listed wins.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "电": (
        "电", "灯", "灯管", "灯泡", "路灯", "插座", "插头", "开关", "跳闸", "断电", "停电", "漏电", "电线", "线路",
        "电源", "电闸", "配电", "空调", "风扇", "电扇", "吊扇", "电梯", "热水器", "烘手机",
    ),
    "水": (
        "水", "漏水", "渗水", "积水", "水管", "水龙头", "龙头", "马桶", "便池", "小便池", "蹲坑", "下水", "下水道",
        "堵塞", "堵了", "冲水", "水箱", "洗手池", "水池", "拖把池", "饮水机", "净水器", "卫生间", "厕所", "水阀",
    ),
    "门窗": (
        "门", "窗", "窗户", "门锁", "锁", "钥匙", "门把手", "把手", "合页", "铰链", "玻璃", "纱窗", "窗帘",
        "门框", "窗框", "闭门器", "卷帘门",
    ),
    "家具": (
        "桌", "桌子", "课桌", "椅", "椅子", "凳", "凳子", "柜", "柜子", "柜门", "书柜", "衣柜", "储物柜", "床",
        "床板", "书架", "讲台", "黑板", "沙发", "抽屉", "货架", "床铺",
    ),
    "信息化": (
        "电脑", "计算机", "笔记本", "网络", "网线", "断网", "上网", "wifi", "无线", "路由器", "交换机", "投影",
        "投影仪", "幕布", "一体机", "电子白板", "白板", "显示器", "屏幕", "大屏", "鼠标", "键盘", "打印机",
        "复印机", "扫描仪", "广播", "音响", "话筒", "麦克风", "功放", "监控", "摄像头", "电话", "电子班牌",
        "班牌", "多媒体", "门禁", "刷卡", "校园网",
    ),
}

# Place words that contain a keyword but say nothing about the fault.
NEUTRAL: tuple[str, ...] = ("门卫", "门口", "校门", "部门", "电教", "门诊")

CATEGORIES: tuple[str, ...] = (*KEYWORDS, OTHER)


_KEYWORDS_LONGEST_FIRST: list[tuple[str, str]] = sorted(
    ((word.lower(), cat) for cat, words in KEYWORDS.items() for word in words), key=lambda wc: -len(wc[0])
)


def guess_category(text: str) -> str:
    """The category whose keywords occur most often; longer keywords consume the text first."""
    s = text.lower()
    for word in NEUTRAL:
        s = s.replace(word, " ")
    scores = dict.fromkeys(KEYWORDS, 0)
    for word, cat in _KEYWORDS_LONGEST_FIRST:
        n = s.count(word)
        if n:
            scores[cat] += n
            s = s.replace(word, " ")
    best = max(scores, key=lambda c: scores[c])  # ties: the first category listed
    return best if scores[best] else OTHER
