

def test_unbound_gets_binding_hint(wx):
    reply = wx.text("o_stranger", "报修 教学楼301 灯不亮")
    assert "绑定" in reply


def test_invite_bind_help(chat, rt):
    from storage import people
    with rt.db.session() as s:
        p, inv = people.invite(s, "张老师", ["teacher"], now=rt.clock.now())
        code = inv.code
    reply = chat.wx.text("o_zhang", f"绑定 {code}")
    assert "绑定成功" in reply and "张老师" in reply
    help_reply = chat.wx.text("o_zhang", "帮助")
    assert "我的信息" in help_reply
    assert "张老师" in chat.wx.text("o_zhang", "我的信息")
