"""Customers at risk: the nightly list with its reasons, what to do about it, and the back-test.

    /metrics/at-risk/?as_of=DATE&reason=CODE&customer_type=TYPE&sort=KEY&page=N

The list is sorted by the predicted value that would be lost (value at risk) unless
another sort is asked for. Staff with the permissions tick customers and assign them a
follow-up or add them to a re-engagement list (a POST, confirmed on the page). The
back-test says how often, on past days, the customers the score ranked highest really
did not buy in the following 90 days, beside ranking by days since the last order.
"""

from __future__ import annotations

import operator
from datetime import date
from functools import reduce

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from retention.periods import last_complete_day
from retention.sales.models import Customer
from retention.value import atrisk, followups, predictions, reports
from retention.value.models import ClvFit, ReEngagementList
from retention.value.reports import SORTS, RiskFilter
from retention.views.access import csv_download, day_asked, managers_only

PAGE_SIZE = 50
# The list a team works through first: this many, by expected value lost.
FOCUS = 200
SORT_LABELS = {"expected_loss": gettext_lazy("Expected value lost"),
               "value_at_risk": gettext_lazy("Value at risk"),
               "score": gettext_lazy("Chance of no purchase in 90 days"),
               "predicted_value": gettext_lazy("Predicted 12-month value"),
               "days_since_last": gettext_lazy("Days since the last order")}


class ActForm(forms.Form):
    """What to do with the ticked customers: assign a follow-up, or add them to a list."""

    ACTIONS = [("assign", gettext_lazy("Assign a follow-up")),
               ("add_to_list", gettext_lazy("Add to a re-engagement list"))]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect)
    customers = forms.ModelMultipleChoiceField(
        queryset=Customer.objects.all(), error_messages={
            "required": gettext_lazy("Tick at least one customer.")})
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False,
        label=gettext_lazy("Assign to"))
    due_on = forms.DateField(required=False, label=gettext_lazy("Due on"),
                             widget=forms.DateInput(attrs={"type": "date"}))
    existing_list = forms.ModelChoiceField(
        queryset=ReEngagementList.objects.all(), required=False,
        label=gettext_lazy("Re-engagement list"))
    new_list = forms.CharField(max_length=100, required=False,
                               label=gettext_lazy("or a new list named"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (get_user_model().objects
                                            .filter(is_active=True, is_staff=True)
                                            .order_by("username"))

    def clean(self):
        data = super().clean()
        if data.get("action") == "assign" and not data.get("assignee"):
            self.add_error("assignee", _("Choose who follows up."))
        if data.get("action") == "add_to_list":
            named = (data.get("new_list") or "").strip()
            if not data.get("existing_list") and not named:
                self.add_error("new_list", _("Choose a list or name a new one."))
            elif data.get("existing_list") and named:
                self.add_error("new_list", _("Choose a list or name a new one, not both."))
        return data


def _filter_asked(query) -> tuple[RiskFilter, list[str]]:
    errors = []
    chosen = RiskFilter(reason=query.get("reason", ""),
                        customer_type=query.get("customer_type", ""),
                        sort=query.get("sort", "expected_loss"))
    if chosen.reason and atrisk.reason(chosen.reason) is None:
        errors.append(_("Unknown reason %(reason)s; showing every reason.")
                      % {"reason": chosen.reason})
        chosen.reason = ""
    if chosen.customer_type and chosen.customer_type not in Customer.Type.values:
        errors.append(_("Unknown customer type %(type)s; showing every type.")
                      % {"type": chosen.customer_type})
        chosen.customer_type = ""
    if chosen.sort not in SORTS:
        errors.append(_("Unknown sort %(sort)s; sorted by expected value lost.")
                      % {"sort": chosen.sort})
        chosen.sort = "expected_loss"
    return chosen, errors


def _day_asked(query, available: list[date]) -> tuple[date | None, list[str]]:
    return day_asked(query, available,
                     missing=_("No at-risk list for %(day)s; showing %(latest)s."))


def _may_act(user) -> dict[str, bool]:
    # Assigning may hand an open follow-up to someone else: an add and a change.
    return {"assign": user.has_perms(["retention.add_followup", "retention.change_followup"]),
            "add_to_list": user.has_perm("retention.add_reengagementmember"),
            "make_list": user.has_perm("retention.add_reengagementlist")}


def _act(request) -> HttpResponseRedirect:
    """Carry out the ticked action and come back to the same list, with a message."""
    back = request.POST.get("next") or request.path
    # Only back to a page of this site: "//elsewhere.example" starts with a slash too.
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = request.path
    form = ActForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return HttpResponseRedirect(back)
    data = form.cleaned_data
    if not _may_act(request.user)[data["action"]]:
        raise PermissionDenied(_("You may read this list but not act on it."))
    ids = [customer.pk for customer in data["customers"]]
    if data["action"] == "assign":
        done = followups.assign(ids, to=data["assignee"], by=request.user,
                                due_on=data["due_on"])
        messages.success(request, _("%(done)s Assigned to %(user)s.") % {
            "done": done, "user": data["assignee"].get_username()})
    else:
        try:
            chosen, added = followups.add_to_list(
                ids, existing=data["existing_list"], list_name=data["new_list"], by=request.user,
                may_create=_may_act(request.user)["make_list"])
        except followups.ListNotAllowed as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(back)
        text = ngettext("%(added)s of %(selected)s customer added to “%(list)s”.",
                        "%(added)s of %(selected)s customers added to “%(list)s”.", len(ids))
        if added < len(ids):
            text += " " + _("The others were already on it.")
        messages.success(request, text % {"added": added, "selected": len(ids),
                                          "list": chosen.name})
    return HttpResponseRedirect(back)


def _focused(rows, query, chosen: RiskFilter, precision: dict | None):
    """The default view: the FOCUS customers worth most by expected value lost, leaving out
    those whose every reason did no better than chance on the last back-test. A filter, a
    sort other than the default, or `all=1` shows the whole list."""
    if query.get("all") == "1" or chosen.reason or chosen.customer_type or \
            chosen.sort != "expected_loss":
        return rows, None
    left_out, kept = [], atrisk.reasons()
    if precision:
        judged = precision["reasons"]
        kept = [r for r in kept if judged.get(r.code, {}).get("telling") is not False]
        left_out = [r.label for r in atrisk.reasons() if r not in kept]
    if kept and left_out:
        rows = rows.filter(reduce(operator.or_, (r.condition() for r in kept)))
    return rows[:FOCUS], {"size": FOCUS, "left_out": left_out if kept else [],
                          "none_telling": bool(precision) and not kept}


def _with_precision(summary: dict, precision: dict | None) -> dict:
    for row in summary["reasons"]:
        row["backtest"] = (precision or {}).get("reasons", {}).get(row["code"])
    return summary


def _with(query, **values) -> str:
    query = query.copy()
    for name, value in values.items():
        query[name] = value
    return query.urlencode()


@managers_only
def at_risk_page(request):
    if request.method == "POST":
        return _act(request)
    available = reports.at_risk_days()
    day, errors = _day_asked(request.GET, available)
    chosen, filter_errors = _filter_asked(request.GET)
    errors += filter_errors
    context = {"errors": errors, "day": day, "chosen": chosen,
               "reasons": [(r.code, r.label) for r in atrisk.reasons()],
               "sorts": SORT_LABELS.items(), "types": Customer.Type.choices,
               "backtests": atrisk.stored_backtests(last_complete_day())}
    if day is None:
        context["errors"] = [_("No at-risk list yet: the nightly job makes one "
                               "(manage.py run_nightly).")]
        return render(request, "retention/at_risk.html", context)
    precision = atrisk.stored_reason_precision(last_complete_day())
    rows, focus = _focused(reports.at_risk_rows(day, chosen), request.GET, chosen, precision)
    paginator = Paginator(rows, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    for row in page:
        row.words = atrisk.in_words(row)  # the template runs no code of the model's
    query = request.GET.copy()
    query.pop("page", None)
    may = _may_act(request.user)
    fit = ClvFit.objects.filter(purpose=ClvFit.Purpose.NIGHTLY, as_of=day).order_by(
        "-created_at").first()
    context.update({
        "fit": predictions.describe(fit),
        "available": available[:60], "page": page, "count": paginator.count,
        "summary": _with_precision(reports.at_risk_summary(day, chosen), precision),
        "precision": precision, "focus": focus, "query": query.urlencode(),
        "all_query": _with(query, all="1"),
        "may_act": may["assign"] or may["add_to_list"], "may": may,
        "form": ActForm() if may["assign"] or may["add_to_list"] else None,
        "lists": ReEngagementList.objects.order_by("name") if may["add_to_list"] else [],
    })
    return render(request, "retention/at_risk.html", context)


@managers_only
def at_risk_csv(request):
    available = reports.at_risk_days()
    day, _errors = _day_asked(request.GET, available)
    chosen, _filter_errors = _filter_asked(request.GET)
    if day is None:
        return csv_download("at-risk.csv", reports.CSV_COLUMNS, [])
    return csv_download(f"at-risk-{day}.csv", reports.CSV_COLUMNS,
                        reports.as_csv_rows(
                            reports.at_risk_rows(day, chosen)), stream=True)
