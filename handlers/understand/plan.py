"""What the understanding layer decided about one message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUN, CONFIRM, ASK, CHAT, HINT, CANONICAL = "run", "confirm", "ask", "chat", "hint", "canonical"


@dataclass
class Plan:
    """`run`: execute `command` (canonical grammar) now; `confirm`: restate and wait for 是/确认;
    `ask`: a field is missing (a dialog may keep what was said); `chat`: a friendly word, no record;
    `hint`: no likely intent, suggest commands; `canonical`: the message already is a command."""

    kind: str
    intent: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    reply: str = ""
    dialog: dict[str, Any] | None = None  # the fill dialog's state, when asking


def run(intent: str, command: str, **fields: Any) -> Plan:
    return Plan(RUN, intent, fields, command=command)


def ask(intent: str, reply: str, dialog: dict[str, Any] | None = None, **fields: Any) -> Plan:
    return Plan(ASK, intent, fields, reply=reply, dialog=dialog)


def confirm(intent: str, command: str, what: str, **fields: Any) -> Plan:
    return Plan(CONFIRM, intent, fields, command=command,
                reply=f"您是要{what}回复「是」执行，或直接改正。")
