"""``weekend_or_holiday_signature``: signed on a Saturday, a Sunday or a Brazilian national holiday.

National holidays come from the ``holidays`` package (state and municipal holidays are not counted: a
contract's place is not always known, and a national holiday is a day off everywhere).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, SideData
from cidadao.redflags.frame import Frame
from cidadao.redflags.legal import holiday_days, holiday_name

__all__ = ["WeekendHolidayRule"]

_WEEKDAYS: Final = np.array(["segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo"], dtype=object)


class WeekendHolidayRule:
    flag: Final = "weekend_or_holiday_signature"
    level: Final = "contract"
    phase: Final = 1
    basis: Final = "method: signature on a non-working day (Open Contracting red flags; national holidays)"

    def evaluate(self, frame: Frame, side: SideData, stats: object = None) -> Hits:
        if frame.n == 0:
            return Hits.none(self.flag, self.basis)
        weekday = (frame.day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        holiday = np.isin(frame.day, holiday_days(int(frame.year.min()), int(frame.year.max())))
        rows = np.flatnonzero((weekday >= 5) | holiday)
        names = np.full(rows.size, None, dtype=object)
        on_holiday = np.flatnonzero(holiday[rows])
        names[on_holiday] = [holiday_name(int(d)) for d in frame.day[rows[on_holiday]].tolist()]
        signed = frame.column("signed_on").take(rows).cast("string").to_numpy(zero_copy_only=False)
        return Hits(
            self.flag, rows, np.zeros(rows.size, np.int8), np.ones(rows.size),
            {"signed_on": signed, "weekday": _WEEKDAYS[weekday[rows]], "holiday": names},
            self.basis,
        )  # fmt: skip
