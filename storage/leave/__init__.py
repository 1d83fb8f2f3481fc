"""Student leave slips 请假 (QJ): a parent or teacher asks, the head teacher (or an admin or leader as deputy)
decides, the gate records the exit and the return; slips still pending or students not back raise alerts.

models.py: the tables and states; service.py: the rules (state machine, the gate, the timed alerts); queries.py:
the console's list, export and dashboard figures. Everything public is re-exported here:
`from storage import leave; leave.request_leave(…)`.
"""

from storage.leave import models, queries, service
from storage.leave.models import *  # noqa: F403
from storage.leave.queries import *  # noqa: F403
from storage.leave.service import *  # noqa: F403

__all__ = [*models.__all__, *service.__all__, *queries.__all__]
