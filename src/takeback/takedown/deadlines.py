"""When a party's answer is due, per legal basis.

TAKE IT DOWN: 48 hours after the request (Act §3(a)(3)).  GDPR: one month after receipt (Art. 12(3); the controller
may extend by two months but must say so within the first month).  DMCA: "expeditiously" (§512(c)(1)(C)) and DSA:
"timely" (Art. 16(6)) name no number, so the follow-up date is a setting; search delisting and abuse reports too.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from takeback.config import Settings

TAKE_IT_DOWN_HOURS = 48


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later, or the month's last day when it has no such day (31 Jan + 1 month = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def deadline_for(basis: str, sent_at: datetime, settings: Settings) -> datetime:
    if basis == "takeitdown":
        return sent_at + timedelta(hours=TAKE_IT_DOWN_HOURS)
    if basis == "gdpr":
        return add_months(sent_at, 1)
    if basis == "dmca":
        return sent_at + timedelta(days=settings.takedown_dmca_days)
    return sent_at + timedelta(days=settings.takedown_followup_days)
