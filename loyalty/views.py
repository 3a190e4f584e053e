"""The customers' loyalty pages: redeeming a reward, and a referral link's landing page.

A customer arrives from a button of their page carrying a signed token (purpose "loyalty",
loyalty/sections.py); the token authenticates, no login is needed. Opening a link (a GET,
which mail scanners and link previews make too) only shows a page: the confirmation page
asks, and the person's POST of its form redeems. The form carries an idempotency key made
when the page was shown, so a double click, a reload or a retried POST redeems once.

    GET  /loyalty/redeem/<token>/<reward>/      "Redeem … for N points? You will have M left."
    POST /loyalty/redeem/<token>/<reward>/      redeems, then 303 to the code
    GET  /loyalty/redeemed/<token>/<id>/        the code, its expiry and how to use it
    GET  /loyalty/join/<code>/                  who invited you, and where to sign up
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from loyalty import redemptions
from loyalty.models import Account, Program, Redemption, Reward
from loyalty.sections import first_name, points_text, reward_words
from retention.mail import links

# What the confirmation form's hidden field may carry (a uuid4 hex, as the GET makes it).
KEY = re.compile(r"[A-Za-z0-9_-]{8,100}")


def _base(**context) -> dict:
    return {"business_name": settings.RETENTION_BUSINESS_NAME, **context}


def _problem(request, error: links.LinkInvalid):
    """The same friendly page, and statuses, as retention's for a link that does not work."""
    expired = isinstance(error, links.LinkExpired)
    return render(request, "account/link_problem.html", _base(expired=expired),
                  status=410 if expired else 400)


def _customer_of(token: str):
    """The customer a "loyalty" token names; raises LinkInvalid or LinkExpired."""
    link = links.read(token, "loyalty")
    if link.customer is None:
        raise links.LinkInvalid("this link names nobody")
    return link.customer


def _page_url(customer) -> str:
    """The customer's own page (a fresh "account" link), on this site."""
    return reverse("account", kwargs={"token": links.token(customer, "account")})


def _refused(request, customer, *, title: str, message: str, status: int):
    return render(request, "loyalty/refused.html", _base(
        title=title, message=message, back_url=_page_url(customer)), status=status)


def _confirm(request, customer, reward: Reward, account, *, refusal: str = "",
             status: int = 200, can_redeem: bool = True):
    """The confirmation page; with a refusal, says why, and without the form unless
    `can_redeem` (asking again can help)."""
    available = account.available if account is not None and not account.held_out else 0
    return render(request, "loyalty/confirm.html", _base(
        reward=reward, what=reward_words(reward),
        points_text=points_text(reward.points), available_text=points_text(available),
        left_text=points_text(max(0, available - reward.points)),
        key=uuid.uuid4().hex, refusal=refusal, can_redeem=can_redeem,
        back_url=_page_url(customer)), status=status)


def _why_not(account, reward: Reward) -> tuple[int, str] | None:
    """Why the customer cannot redeem `reward` now, as (status, words); None if they can.
    Only for showing: `redemptions.redeem` checks again, with the account locked."""
    if not redemptions.available_rewards().filter(pk=reward.pk).exists():
        if reward.stock == 0:
            return 409, _("%(reward)s is out of stock.") % {"reward": reward.title}
        return 409, _("%(reward)s cannot be redeemed at the moment.") % {"reward": reward.title}
    available = account.available if account is not None and not account.held_out else 0
    if available < reward.points:
        return 409, _("%(reward)s costs %(cost)s; you have %(available)s.") % {
            "reward": reward.title, "cost": points_text(reward.points),
            "available": points_text(available)}
    if reward.per_customer_limit is not None and account is not None and (
            Redemption.objects.filter(account=account, reward=reward).count()
            >= reward.per_customer_limit):
        return 409, _("You have redeemed %(reward)s as many times as it allows.") % {
            "reward": reward.title}
    return None


@never_cache  # personal data: no browser or proxy keeps a copy
@require_http_methods(["GET", "POST"])
def redeem(request, token: str, reward_code: str):
    """GET: ask (changes nothing). POST (the person's confirmation): redeem, once per key."""
    try:
        customer = _customer_of(token)
    except links.LinkInvalid as error:
        return _problem(request, error)
    reward = Reward.objects.select_related("course").filter(code=reward_code).first()
    if reward is None:
        return _refused(request, customer, title=_("This reward does not exist"), message=_(
            "We could not find this reward. It may have been withdrawn; your page shows the "
            "rewards you can have now."), status=404)
    # Read, never opened here: a GET must not write, and no account means no points.
    account = Account.objects.filter(customer=customer).first()
    if request.method == "POST":
        key = request.POST.get("key", "")
        if not KEY.fullmatch(key):
            return _confirm(request, customer, reward, account, status=400, refusal=_(
                "The confirmation was incomplete, so nothing was redeemed. Please confirm "
                "again."))
        try:
            result = redemptions.redeem(customer, reward, key=f"page:{customer.pk}:{key}")
        except redemptions.RedemptionRefused as refused:
            # In words, from the balance and stock as they are now (the detail otherwise).
            account = Account.objects.filter(customer=customer).first()
            why = _why_not(account, reward)
            return _confirm(request, customer, reward, account, status=409,
                            refusal=why[1] if why else refused.detail, can_redeem=False)
        response = HttpResponseRedirect(reverse("loyalty:redeemed", kwargs={
            "token": links.token(customer, "loyalty"),
            "redemption_id": result.redemption.pk}))
        response.status_code = 303  # See Other: a reload shows the code, never posts again
        return response
    if (why := _why_not(account, reward)) is not None:
        status, message = why
        return _confirm(request, customer, reward, account, status=status, refusal=message,
                        can_redeem=False)
    return _confirm(request, customer, reward, account)


HOW_TO_USE = {
    Reward.Kind.CONTENT: "Enter the code where the content asks for it, on our site.",
}


@never_cache
@require_GET
def redeemed(request, token: str, redemption_id: int):
    """The code of one of the customer's redemptions (another customer's: not found)."""
    try:
        customer = _customer_of(token)
    except links.LinkInvalid as error:
        return _problem(request, error)
    redemption = (Redemption.objects.select_related("reward__course", "account")
                  .filter(pk=redemption_id, account__customer=customer).first())
    if redemption is None:
        return _refused(request, customer, title=_("We could not find this code"), message=_(
            "This link does not lead to one of your codes. Your page lists all of them."),
            status=404)
    reward = redemption.reward
    how = _(HOW_TO_USE.get(reward.kind, "Enter the code at checkout when you next order."))
    return render(request, "loyalty/redeemed.html", _base(
        redemption=redemption, reward=reward, what=reward_words(reward), how=how,
        points_text=points_text(redemption.points),
        available_text=points_text(redemption.account.available),
        used=redemption.used_at is not None, emailed=bool(customer.email),
        back_url=_page_url(customer)))


def signup_url(code: str) -> str:
    """Where a referred person signs up: RETENTION_REFERRAL_SIGNUP_URL (SITE_URL if unset),
    with ?ref=<code> added to whatever query it has."""
    base = getattr(settings, "RETENTION_REFERRAL_SIGNUP_URL", None) or settings.SITE_URL
    parts = urlsplit(base)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
             if name != "ref"] + [("ref", code)]
    return urlunsplit(parts._replace(path=parts.path or "/", query=urlencode(query)))


@never_cache
@require_GET
def join(request, code: str):
    """A referral link's public landing page: who invited them (first name only) and where
    to sign up. Changes nothing; the platform reports the sign-up with the code."""
    account = (Account.objects.select_related("customer")
               .filter(referral_code=code.strip().upper()[:16]).first())
    if account is None:
        return render(request, "loyalty/join_unknown.html", _base(), status=404)
    return render(request, "loyalty/join.html", _base(
        name=first_name(account.customer), code=account.referral_code,
        welcome_points_text=points_text(Program.current().welcome_points),
        signup_url=signup_url(account.referral_code)))
