"""Reminders 提醒 (TX): one-off and recurring pushes to people or roles, fired exactly once per due time, with
optional receipts (收到 / 完成) that escalate to the admins when overdue.

models.py: the tables and states; service.py: the rules (targets, setting, cancelling, receipts, keyed reminders of
built-in events and the duty rota); firing.py: exactly-once firing and missed times; queries.py: the console's
lists, details and export. Everything public is re-exported here: `from storage import reminder as rem;
rem.create(…)`.
"""

from storage.reminder import firing, models, queries, service
from storage.reminder.firing import *  # noqa: F403
from storage.reminder.models import *  # noqa: F403
from storage.reminder.queries import *  # noqa: F403
from storage.reminder.service import *  # noqa: F403

__all__ = [*models.__all__, *service.__all__, *firing.__all__, *queries.__all__]
