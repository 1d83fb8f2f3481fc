"""Repairs 报修 (BX): a staff member reports a fault, a worker of its category takes and finishes it, the
reporter rates it; unassigned or slow tickets go to the admins.

models.py: the tables and states; categories.py: categories and the keywords that guess them; service.py: the
rules (state machine, assignment, access, escalation, statistics); queries.py: the console's list, export and
dashboard figures. Everything public is re-exported here: `from storage import repair; repair.create_ticket(…)`.
"""

from storage.repair import categories, models, queries, service
from storage.repair.categories import *  # noqa: F403
from storage.repair.models import *  # noqa: F403
from storage.repair.queries import *  # noqa: F403
from storage.repair.service import *  # noqa: F403

__all__ = [*models.__all__, *categories.__all__, *service.__all__, *queries.__all__]
