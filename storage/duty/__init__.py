"""Holiday duty 节假日行政值日: which school leader is on duty on each weekend and statutory holiday, with the
reminders each duty day owns (the leader the evening before and that morning, the guards that morning).

models.py: the rota table; service.py: the rules (generate, import, 换班, the days' reminders, reading the rota);
queries.py: the console's list and export. Everything public is re-exported here:
`from storage import duty; duty.generate(…)`.
"""

from storage.duty import models, queries, service
from storage.duty.models import *  # noqa: F403
from storage.duty.queries import *  # noqa: F403
from storage.duty.service import *  # noqa: F403

__all__ = [*models.__all__, *service.__all__, *queries.__all__]
