"""Inspections and patrols 巡查 (XC): checkpoints (点位) with QR codes, routes, rounds, visits and findings.

A checkpoint is a place or asset with a code and its check items. A route is an ordered set of checkpoints with a
schedule (school days, every day, weekly, monthly, once), a time window and who does it (roles and/or named
people). On a day a route runs, its round exists once (UNIQUE route_id, day); a visit is a scan (or `巡查 <点位>`)
of a checkpoint, inside a due round or as an extra check; `异常` on a visit records a finding and opens a repair
ticket for the checkpoint's place through storage.repair (linked: Finding.ticket_id, and the ticket's history
names the visit). Round reminders and missed-checkpoint alerts are sent once: a mark on the round, written under
a row lock in the same transaction as the outbox rows, which carry unique dedup keys as the backstop.

models.py: the tables, check items and schedules; checkpoints.py: checkpoints and routes (import, edit, when a
route runs, who is responsible, the built-in routes); rounds.py: rounds, scans, answers and findings, and the two
jobs; queries.py: the console's ledger, open findings, today's rounds and the XLSX. Everything public is
re-exported here: `from storage import inspection; inspection.scan(…)`.
"""

from storage.inspection import checkpoints, models, queries, rounds
from storage.inspection.checkpoints import *  # noqa: F403
from storage.inspection.models import *  # noqa: F403
from storage.inspection.queries import *  # noqa: F403
from storage.inspection.rounds import *  # noqa: F403

__all__ = [*models.__all__, *checkpoints.__all__, *rounds.__all__, *queries.__all__]
