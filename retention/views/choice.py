"""The period and customers a manager picked: read from a page's query, and written back into
the links to other pages and exports, so every page of a choice shows the same figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from retention.figures import metrics
from retention.periods import ONE_DAY, month_start, quarter_start

PERIODS = [("this_quarter", _("This quarter")), ("last_quarter", _("Last quarter")),
           ("this_month", _("This month")), ("last_month", _("Last month")),
           ("custom", _("Custom"))]
SUBSET_FIELDS = ("customer_type", "source", "category", "segment")


@dataclass
class Choice:
    period: str
    start: date
    end: date
    subset: metrics.Subset
    errors: list[str] = field(default_factory=list)

    def query(self, **extra) -> str:
        """The query string that asks for this period and subset (plus `extra`)."""
        params = {"period": self.period}
        if self.period == "custom":
            params.update(start=self.start.isoformat(), end=self.end.isoformat())
        params.update({name: getattr(self.subset, name) for name in SUBSET_FIELDS
                       if getattr(self.subset, name)})
        params.update(extra)
        return urlencode(params)


def _named(period: str, as_of: date) -> tuple[str, date, date]:
    """The first and last days of a named period (this quarter by default)."""
    if period == "last_quarter":
        end = quarter_start(as_of) - ONE_DAY
        return period, quarter_start(end), end
    if period == "this_month":
        return period, month_start(as_of), as_of
    if period == "last_month":
        end = month_start(as_of) - ONE_DAY
        return period, month_start(end), end
    return "this_quarter", quarter_start(as_of), as_of


def parse(query, as_of: date) -> Choice:
    """The period and subset asked for (defaults: this quarter to `as_of`, everyone).

    "This quarter" and "this month" run to `as_of`, the last complete day; on the first
    day of a quarter or month they are the one that just ended. Dates typed into the
    picker while it still names a period are the dates asked for (the period becomes
    custom). A period cannot run past `as_of`: orders still arriving would count as gone,
    so its end is brought back to `as_of`, and the page says so.
    """
    errors = []
    period, start, end = _named(query.get("period", "this_quarter"), as_of)
    typed = query.get("start", ""), query.get("end", "")
    if query.get("period") == "custom" or (
            any(typed) and typed != (start.isoformat(), end.isoformat())):
        try:
            period, start, end = ("custom", date.fromisoformat(typed[0]),
                                  date.fromisoformat(typed[1]))
        except ValueError:
            errors.append(_("Give the custom period's first and last days."))
            period, start, end = _named("this_quarter", as_of)
    if end > as_of:
        errors.append(_("Figures run to %(day)s, the last complete day: the period ends "
                        "there, not on %(asked)s.") % {"day": date_format(as_of),
                                                       "asked": date_format(end)})
        end = as_of
    subset = metrics.Subset(**{name: query.get(name, "") for name in SUBSET_FIELDS})
    return Choice(period, start, end, subset, errors)
