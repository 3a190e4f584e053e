"""The loyalty section of the customer's page: points (available and pending), tier and
progress, lots and their expiry, recent history, rewards, coupon codes, the referral link
and the referrals it brought.

`context(customer)` reads; it spends nothing and sends nothing. Two things are written
the first time they are needed, as the ledger and referrals intend: the customer's
account (`ledger.account_of`, with no entry and no points) when rewards exist but the
customer has no account yet, and its referral code (`referrals.code_of`). A held-out
customer has no section at all.

The section carries, for each reward the customer can have, the URL of its confirmation
page with a fresh signed token (purpose "loyalty"); opening that page changes nothing,
the customer's POST there redeems (loyalty/views.py). The template shows no such URL, and
no share link, when the page is the staff preview (`preview` in the page's context).

Queries: about a dozen, whatever the number of lots, entries, rewards or referrals (the
account with its tier, the program, the tiers and the 12-month earnings for the tier
progress, the lots, the expiry dates, the last entries, the rewards with their courses,
the redemption counts per reward, the codes, the referrals with their customers).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from loyalty import ledger, referrals, tiers
from loyalty.models import Account, Entry, Program, Redemption, Referral, Reward
from loyalty.redemptions import available_rewards
from retention import formatting
from retention.mail import links
from retention.sales.models import Customer

HISTORY = 20  # entries shown, newest first
LOTS_SHOWN = 100  # lots listed one by one; the rest are summed in a sentence
CODES_SHOWN = 50
REFERRALS_SHOWN = 50


def points_text(points: int) -> str:
    """'1 point', '1,250 points' (the locale's separators)."""
    return ngettext("%(n)s point", "%(n)s points", abs(points)) % {
        "n": formatting.count(abs(points))}


def percent_of(part: int, whole: int) -> int:
    """`part` as a whole percentage of `whole`, 0–100 (100 when there is nothing to reach)."""
    if whole <= 0:
        return 100
    return max(0, min(100, part * 100 // whole))


def first_name(customer: Customer) -> str:
    """A customer's first name only (never their email or an organisation's name)."""
    name = (customer.name or "").split()
    return name[0] if name else _("Someone")


def join_url(code: str) -> str:
    """The public referral link: SITE_URL + /loyalty/join/<code>/."""
    return settings.SITE_URL.rstrip("/") + reverse("loyalty:join", kwargs={"code": code})


def context(customer: Customer) -> dict | None:
    """The section's context, or None: held out, or no account and no reward to show."""
    account = Account.objects.select_related("tier").filter(customer=customer).first()
    if account is None:
        if not available_rewards().exists():
            return None
        account = ledger.account_of(customer)  # opened the first time it is needed
    if account.held_out:
        return None
    day = ledger.today()
    program = Program.current()
    token = links.token(customer, "loyalty")
    return {
        "program_name": program.name,
        "available": account.available,
        "available_text": points_text(account.available),
        "pending": account.pending,
        "pending_text": points_text(account.pending),
        "refund_days": program.refund_days,
        "lifetime_text": points_text(account.lifetime_earned),
        **_tier(account, program, day),
        **_lots(account, program, day),
        "history": _history(account),
        **_rewards(account, token, day),
        "codes": _codes(account),
        **_referral(account, program),
    }


def _tier(account: Account, program: Program, day) -> dict:
    progress = tiers.progress_of(account, day)
    tier, next_tier, keep = progress["tier"], progress["next_tier"], progress["keep_tier"]
    spend = progress["basis"] == "spend"

    def amount(value: int) -> str:
        return formatting.money(value) if spend else points_text(value)

    qualifying = progress["qualifying"]
    if next_tier is not None:
        goal = qualifying + next_tier["needed"]
        next_tier = {**next_tier, "needed_text": amount(next_tier["needed"]),
                     "goal_text": amount(goal), "percent": percent_of(qualifying, goal)}
    if keep is not None:
        keep = {**keep, "needed_text": amount(keep["needed"])}
    benefits = []
    if tier is not None:
        if tier.discount_percent:
            benefits.append(_("%(percent)s %% off every course") % {
                "percent": tier.discount_percent})
        if tier.multiplier and tier.multiplier != 1:
            benefits.append(_("%(times)s times the points on every order") % {
                "times": formatting.number(tier.multiplier)})
        if tier.early_access_days:
            benefits.append(ngettext(
                "Buy new courses %(days)s day before they launch",
                "Buy new courses %(days)s days before they launch",
                tier.early_access_days) % {"days": tier.early_access_days})
        benefits += [line.strip() for line in tier.benefits.splitlines() if line.strip()]
    return {
        "has_tiers": tier is not None or next_tier is not None,
        "tier": tier,
        "tier_since": account.tier_since,
        "grace_until": account.grace_until,
        "tier_benefits": benefits,
        "next_tier": next_tier,
        "keep_tier": keep,
        "qualifying": qualifying,
        "qualifying_text": amount(qualifying),
        "basis": progress["basis"],
        "basis_text": (_("money spent on paid orders over the last 12 months") if spend
                       else _("points earned over the last 12 months")),
    }


def _lots(account: Account, program: Program, day) -> dict:
    lots = ledger.lots(account)
    shown, rest = lots[:LOTS_SHOWN], lots[LOTS_SHOWN:]
    warn_until = day + timedelta(days=program.expiry_warning_days)
    expiring = [{**row, "points_text": points_text(row["points"]), "soon": row["on"] <= warn_until}
                for row in ledger.expiring(account)]
    return {
        "lots": [{
            "remaining_text": points_text(lot.remaining),
            "points_text": points_text(lot.points),
            "partly_spent": lot.remaining < lot.points,
            "reason": lot.reason,
            "source": lot.get_source_display(),
            "earned_on": lot.earned_on,
            "pending": lot.status == Entry.Status.PENDING,
            "available_on": lot.available_on,
            "expires_on": lot.expires_on,
        } for lot in shown],
        "more_lots": len(rest),
        "more_lots_text": points_text(sum(lot.remaining for lot in rest)),
        "expiring": expiring,
        "expiry_on": bool(program.expiry_days),
        "expiry_days": program.expiry_days,
    }


KIND_WORDS = {
    Entry.Kind.EARN: gettext_lazy("Earned"),
    Entry.Kind.REDEEM: gettext_lazy("Spent on a reward"),
    Entry.Kind.EXPIRE: gettext_lazy("Expired"),
    Entry.Kind.REVERSE: gettext_lazy("Taken back after a refund"),
    Entry.Kind.ADJUST: gettext_lazy("Adjusted by our team"),
}


def day_text(day) -> str:
    return date_format(day, "j M Y")


def _history(account: Account) -> list[dict]:
    entries = Entry.objects.filter(account=account).order_by("-created_at", "-id")[:HISTORY]
    history = []
    for entry in entries:
        if entry.points > 0:
            change = _("plus %(points)s") % {"points": points_text(entry.points)}
        elif entry.points < 0:
            change = _("minus %(points)s") % {"points": points_text(entry.points)}
        else:
            change = _("no points")
        note = ""
        if entry.shortfall:
            note = _("%(points)s had been spent already and could not be taken back.") % {
                "points": points_text(entry.shortfall)}
        if entry.status == Entry.Status.PENDING and entry.available_on:
            note = (_("Pending: available from %(day)s.")
                    % {"day": day_text(entry.available_on)})
        history.append({
            "on": timezone.localtime(entry.created_at).date(),
            "what": str(KIND_WORDS.get(entry.kind, entry.get_kind_display())),
            "change": change,
            "credit": entry.points > 0,
            "reason": entry.reason,
            "source": entry.get_source_display(),
            "note": note,
        })
    return history


def _rewards(account: Account, token: str, day) -> dict:
    rewards = list(available_rewards(on=day).select_related("course"))
    redeemed = dict(Redemption.objects.filter(account=account).order_by()
                    .values_list("reward_id").annotate(n=Count("id")))
    affordable, saving, used_up = [], [], []
    for reward in rewards:
        item = {
            "code": reward.code,
            "title": reward.title,
            "description": reward.description,
            "what": reward_words(reward),
            "points": reward.points,
            "points_text": points_text(reward.points),
            "stock": reward.stock,
            "stock_text": (ngettext("%(n)s left", "%(n)s left", reward.stock)
                           % {"n": formatting.count(reward.stock)}
                           if reward.stock is not None else ""),
            "valid_until": reward.valid_until,
        }
        if (reward.per_customer_limit is not None
                and redeemed.get(reward.pk, 0) >= reward.per_customer_limit):
            item["limit_text"] = ngettext(
                "You have redeemed it %(n)s time, as many as allowed.",
                "You have redeemed it %(n)s times, as many as allowed.",
                reward.per_customer_limit) % {"n": reward.per_customer_limit}
            used_up.append(item)
        elif account.available >= reward.points:
            item["left_text"] = points_text(account.available - reward.points)
            item["url"] = reverse("loyalty:redeem",
                                  kwargs={"token": token, "reward_code": reward.code})
            affordable.append(item)
        else:
            needed = reward.points - account.available
            item["needed_text"] = points_text(needed)
            item["percent"] = percent_of(account.available, reward.points)
            saving.append(item)
    return {"affordable": affordable, "saving_for": saving, "used_up": used_up}


def reward_words(reward: Reward) -> str:
    """The reward in words, from its kind and value."""
    kind = Reward.Kind
    if reward.kind == kind.PERCENT_OFF:
        return _("%(percent)s %% off your next course") % {
            "percent": formatting.number(reward.value)}
    if reward.kind == kind.AMOUNT_OFF:
        return _("%(amount)s off your next course") % {"amount": formatting.money(reward.value)}
    if reward.kind == kind.FREE_COURSE:
        if reward.course is not None:
            return _("The course “%(course)s”, free") % {"course": reward.course.title}
        return _("A free course")
    if reward.kind == kind.BUNDLE_DISCOUNT:
        return _("A discount on a bundle")
    return _("Exclusive content")


def code_status(redemption: Redemption, now) -> tuple[str, str]:
    """(state, words) of a coupon code: used, expired or valid."""
    if redemption.used_at:
        return "used", _("Used on %(day)s") % {
            "day": day_text(timezone.localtime(redemption.used_at))}
    expires = day_text(timezone.localtime(redemption.expires_at))
    if redemption.expires_at <= now:
        return "expired", _("Expired on %(day)s") % {"day": expires}
    return "valid", _("Not used yet; works until %(day)s") % {"day": expires}


def _codes(account: Account) -> list[dict]:
    now = timezone.now()
    codes = []
    for redemption in (Redemption.objects.filter(account=account).select_related("reward")
                       .order_by("-created_at", "-id")[:CODES_SHOWN]):
        state, words = code_status(redemption, now)
        codes.append({"code": redemption.coupon_code, "reward": redemption.reward.title,
                      "redeemed_on": timezone.localtime(redemption.created_at).date(),
                      "points_text": points_text(redemption.points),
                      "expires_at": redemption.expires_at, "state": state, "status": words})
    return codes


def _referral(account: Account, program: Program) -> dict:
    code = referrals.code_of(account)
    rows = (Referral.objects.filter(referrer=account).select_related("referred")
            .order_by("-created_at", "-id")[:REFERRALS_SHOWN])
    words = {Referral.Status.PENDING: _("Waiting for their first order"),
             Referral.Status.REWARDED: _("You earned your points"),
             Referral.Status.CAPPED: _("Not rewarded: over this year's limit"),
             Referral.Status.REFUSED: _("Not counted")}
    return {
        "referral_code": code,
        "referral_url": join_url(code),
        "referrer_points_text": points_text(program.referrer_points),
        "welcome_points_text": points_text(program.welcome_points),
        "referral_cap": program.referral_cap,
        "referrals": [{"name": first_name(referral.referred),
                       "status": referral.status,
                       "status_text": words.get(referral.status, referral.get_status_display()),
                       "on": timezone.localtime(referral.created_at).date()}
                      for referral in rows],
    }
