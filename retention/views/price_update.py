"""What the price update did: the main metrics before and after it, for all customers and for
the buyers of the repriced offerings.

    /metrics/price-update/?date=YYYY-MM-DD&days=N   (defaults: the latest update, the days since)
"""

from __future__ import annotations

from datetime import date

from django.shortcuts import render
from django.utils.translation import gettext as _

from retention.figures import price_update
from retention.periods import last_complete_day
from retention.views.access import csv_download, managers_only

GROUPS = [("all", _("All customers")), ("buyers_of_repriced", _("Buyers of repriced offerings"))]
LABELS = {"retention_rate": _("Retention rate (%)"),
          "repeat_purchase_rate": _("Repeat purchase rate (%)"),
          "average_order_value": _("Average order value"),
          "revenue_per_buyer": _("Revenue per buyer"),
          "new_offering_engagement_rate": _("New-offering engagement (%)"),
          "nps": _("NPS"), "csat": _("CSAT (%)")}


def _asked(query) -> tuple[date | None, int | None, list[str]]:
    errors, on, days = [], None, None
    try:
        on = date.fromisoformat(query["date"]) if query.get("date") else None
    except ValueError:
        errors.append(_("Give the date as YYYY-MM-DD."))
    try:
        days = int(query["days"]) if query.get("days") else None
        if days is not None and not 1 <= days <= 3660:
            raise ValueError
    except ValueError:
        errors.append(_("Days is a whole number from 1 to 3660."))
        days = None
    return on, days, errors


@managers_only
def price_update_page(request):
    on, days, errors = _asked(request.GET)
    context = {"errors": errors, "dates": price_update.update_dates()[:24],
               "query": request.GET.urlencode()}
    try:
        data = price_update.stored_comparison(on, days, as_of=last_complete_day())
    except price_update.NoPriceUpdate as exc:
        context["errors"].append(str(exc))
        return render(request, "retention/price_update.html", context,
                      status=404 if context["dates"] else 200)
    context.update(data=data, groups=[
        {"name": name, "title": title,
         "rows": [{"key": key, "label": LABELS[key], **data[name][key]}
                  for key in price_update.METRICS]}
        for name, title in GROUPS])
    return render(request, "retention/price_update.html", context)


@managers_only
def price_update_csv(request):
    on, days, _errors = _asked(request.GET)
    try:
        data = price_update.stored_comparison(on, days, as_of=last_complete_day())
    except price_update.NoPriceUpdate:
        return csv_download("price-update.csv", ["customers", "metric", "before", "after",
                                                 "change"], [])
    return csv_download(
        f"price-update-{data['date']}.csv",
        ["customers", "metric", "before", "after", "change", "before_start", "before_end",
         "after_start", "after_end"],
        ([name, key, data[name][key]["before"], data[name][key]["after"],
          data[name][key]["change"], data["before"]["start"], data["before"]["end"],
          data["after"]["start"], data["after"]["end"]]
         for name, _title in GROUPS for key in price_update.METRICS))
