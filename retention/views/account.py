"""The pages customers reach by signed links: their page, email preferences, unsubscribe, the
click redirect, and fresh links. Opening a link (a GET, which mail scanners make) only shows a
page; saving and unsubscribing are POSTs the person makes (and RFC 8058's one-click POST).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from retention.account import fresh_links, sections
from retention.mail import consent, links, outbox
from retention.mail.models import ConsentRecord, Topic
from retention.network import client_ip

PAUSES = [("", gettext_lazy("No pause")), ("7", gettext_lazy("1 week")),
          ("30", gettext_lazy("1 month")), ("90", gettext_lazy("3 months"))]
# A 1×1 transparent GIF, for the open-tracking image when RETENTION_TRACK_OPENS is on.
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
         b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


class PreferencesForm(forms.Form):
    marketing_consent = forms.BooleanField(required=False)
    offers = forms.BooleanField(required=False, label=Topic.OFFERS.label)
    new_courses = forms.BooleanField(required=False, label=Topic.NEW_COURSES.label)
    loyalty = forms.BooleanField(required=False, label=Topic.LOYALTY.label)
    surveys = forms.BooleanField(required=False, label=Topic.SURVEYS.label)
    pause_days = forms.ChoiceField(choices=PAUSES, required=False,
                                   label=gettext_lazy("Pause all but essential email"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["marketing_consent"].label = settings.RETENTION_CONSENT_WORDING


def _problem(request, error: links.LinkInvalid):
    """The friendly page for a link that is forged, altered, withdrawn or expired."""
    expired = isinstance(error, links.LinkExpired)
    return render(request, "account/link_problem.html", {"expired": expired},
                  status=410 if expired else 400)


def _initial(customer) -> dict:
    preferences = consent.preferences_of(customer)
    return {"marketing_consent": customer.marketing_consent,
            **{topic: preferences.wants(topic) for topic in Topic.values}}


def _save(customer, form: PreferencesForm, *, method: str, purpose: str) -> None:
    data = form.cleaned_data
    detail = f"the {purpose} page"
    if data["marketing_consent"] != customer.marketing_consent:
        consent.set_marketing_consent(customer, data["marketing_consent"], method=method,
                                      wording=settings.RETENTION_CONSENT_WORDING, detail=detail)
    consent.set_topics(customer, {topic: data[topic] for topic in Topic.values}, method=method,
                       detail=detail)
    days = data.get("pause_days")
    consent.pause(customer, timezone.now() + timedelta(days=int(days)) if days else None,
                  method=method)


def _preferences_page(request, token: str, purpose: str, template: str):
    try:
        link = links.read(token, purpose)
    except links.LinkInvalid as error:
        return _problem(request, error)
    customer = link.customer
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            _save(customer, form, method=ConsentRecord.Method.PREFERENCES, purpose=purpose)
            return HttpResponseRedirect(f"{request.path}?saved=1")
    else:
        form = PreferencesForm(initial=_initial(customer))
    return _render_page(request, template, customer, form, with_sections=purpose == "account",
                        saved=request.GET.get("saved") == "1")


def _render_page(request, template: str, customer, form, *, with_sections: bool,
                 saved: bool = False, preview: bool = False):
    preferences = consent.preferences_of(customer)
    response = render(request, template, {
        "customer": customer, "form": form, "saved": saved, "preview": preview,
        "paused_until": preferences.paused_until if preferences.paused_until
        and preferences.paused_until > timezone.now() else None,
        "sections": sections.sections_for(customer) if with_sections else [],
        "business_name": settings.RETENTION_BUSINESS_NAME,
    })
    return response


def staff_preview(request, customer):
    """The customer's page as they see it, for staff (from the admin): nothing on it can be
    changed or sent, and no link that works as the customer's is on it."""
    form = PreferencesForm(initial=_initial(customer))
    for field in form.fields.values():
        field.disabled = True
    return _render_page(request, "account/page.html", customer, form, with_sections=True,
                        preview=True)


@never_cache  # personal data: no browser or proxy keeps a copy
@require_http_methods(["GET", "POST"])
def account_page(request, token: str):
    """The customer's page: their courses, what other apps add, and email preferences."""
    return _preferences_page(request, token, "account", "account/page.html")


@never_cache
@require_http_methods(["GET", "POST"])
def preferences_page(request, token: str):
    """Email preferences only (the link in every email's footer)."""
    return _preferences_page(request, token, "preferences", "account/preferences.html")


@never_cache
@csrf_exempt  # the signed token authenticates; mail clients' one-click POST has no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET: ask. POST (the button, or RFC 8058 "List-Unsubscribe=One-Click"): unsubscribe."""
    try:
        link = links.read(token, "unsubscribe")
    except links.LinkInvalid as error:
        return _problem(request, error)
    topic = link.data.get("t") or None
    label = Topic(topic).label if topic in Topic.values else _("all email but the essential")
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        method = ConsentRecord.Method.ONE_CLICK if one_click else ConsentRecord.Method.UNSUBSCRIBE
        consent.unsubscribe(link.customer, topic, method=method)
        if one_click:
            return HttpResponse(status=200)
        return render(request, "account/unsubscribed.html", {
            "topic": label, "preferences_url": links.url(link.customer, "preferences"),
            "business_name": settings.RETENTION_BUSINESS_NAME})
    return render(request, "account/unsubscribe.html", {
        "topic": label, "business_name": settings.RETENTION_BUSINESS_NAME})


@never_cache
def click(request, token: str):
    """Count a click on a link in a marketing email, then go where it pointed."""
    try:
        link = links.read(token, "click")
    except links.LinkInvalid as error:
        return _problem(request, error)
    if link.data.get("o"):
        outbox.record_click(link.data.get("m", ""), None)
        return HttpResponse(PIXEL, content_type="image/gif")
    target = link.data.get("u", "")
    if not target.startswith(("https://", "http://")):
        return _problem(request, links.LinkInvalid("not a web address"))
    outbox.record_click(link.data.get("m", ""), target)
    return HttpResponseRedirect(target)


class FreshLinkForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Your email address"))


@never_cache
@require_http_methods(["GET", "POST"])
def fresh_link(request):
    """Ask for a fresh link by email. The answer never says whether the address is known."""
    form = FreshLinkForm(request.POST or None)
    context = {"form": form, "business_name": settings.RETENTION_BUSINESS_NAME}
    if request.method == "POST" and form.is_valid():
        try:
            fresh_links.request_fresh_link(form.cleaned_data["email"], ip=client_ip(request))
        except fresh_links.TooManyRequests:
            return render(request, "account/fresh_link.html", {**context, "too_many": True},
                          status=429)
        return render(request, "account/fresh_link.html", {**context, "sent": True})
    return render(request, "account/fresh_link.html", context,
                  status=400 if request.method == "POST" else 200)
