"""Certificates 证照: people's certificates with an expiry date — above all canteen staff's 健康证, whose holders may
never bind WeChat. The holder (when bound) and the admins are told 30 and 7 days before expiry, once each.

models.py: the table; service.py: the rules (import, save, the expiry notices); queries.py: the list with the days
left. Everything public is re-exported here: `from storage import certificates; certificates.save(…)`.
"""

from storage.certificates import models, queries, service
from storage.certificates.models import *  # noqa: F403
from storage.certificates.queries import *  # noqa: F403
from storage.certificates.service import *  # noqa: F403

__all__ = [*models.__all__, *service.__all__, *queries.__all__]
