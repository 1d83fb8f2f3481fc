"""Visitors 访客 (FK): the guard checks a visitor in and out at the gate, the host is told (and may say 不认识),
teachers book visitors ahead, a blacklist warns the gate; phone and ID numbers are never kept in clear.

models.py: the tables; parse.py: the `访客` line and the checks on what a guard types (pure functions, imported as
`storage.visitor.parse`); service.py: the rules (check-in and out, bookings, blacklist, encryption, the admins'
logged views of full numbers, the end-of-day and long-stay jobs); queries.py: the console's lists and exports.
Models, service and queries are re-exported here: `from storage import visitor; visitor.check_in(…)`.
"""

from storage.visitor import models, queries, service
from storage.visitor.models import *  # noqa: F403
from storage.visitor.queries import *  # noqa: F403
from storage.visitor.service import *  # noqa: F403

__all__ = [*models.__all__, *service.__all__, *queries.__all__]
