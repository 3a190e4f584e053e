"""Earning: the points that orders, completed courses, birthdays and survey answers bring.

Orders earn in bulk. Whatever writes orders (`import_orders`, the orders API, the admin)
ends by handing loyalty the orders it wrote (the `orders_written` signal of
retention.sales.signals), and `earn_for_orders` then runs, in the same transaction:

1. an account is opened for each of their customers who has none;
2. for each active rule of an order kind, one INSERT … SELECT writes a lot per paid order
   the rule applies to, keyed `order:<order id>:<rule code>`, so an order replayed or a
   file imported twice earns once; points from an order stay pending for the program's
   refund window, and the customer's tier multiplier applies; a rule's cap per customer
   and period is applied in the same statement (a running sum over the period's orders,
   after what the rule earned the customer before in that period);
3. a referred customer's first paid order brings their welcome points;
4. an order now refunded or cancelled takes its points back: a pending lot is cancelled;
   an available one is reversed as far as it is unspent, and what was spent already is
   recorded as the reversal's shortfall (a balance never goes negative);
5. a coupon code a redemption issued, carried by a paid order, is marked used;
6. the touched accounts' cached balances are set to their ledger's sums.

Held-out customers (the program's holdout) earn nothing. `dry_run(rule, days)` runs step 2
for one rule, saved or not, over the last days' orders and counts instead of writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    DateField,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import (
    Cast,
    Coalesce,
    Concat,
    Floor,
    Greatest,
    Least,
    TruncDate,
    TruncMonth,
    TruncYear,
    Upper,
)
from django.utils import timezone

from loyalty import ledger
from loyalty.models import Account, Draw, Entry, Program, Redemption, Referral, Rule
from loyalty.sql import AddDays, end_of, insert_select, lock_accounts, start_of
from retention.sales.models import Customer, Order, OrderLine

PAID = Order.Status.PAID
ENTRY_COLUMNS = ["account", "kind", "points", "status", "reason", "source", "source_ref", "rule",
                 "key", "created_at", "earned_on", "available_on", "expires_on", "remaining",
                 "shortfall"]


@dataclass
class Earned:
    """What a bulk earning did: lots written per rule, reversals, coupons marked used."""

    lots: dict[str, int] = field(default_factory=dict)
    welcome: int = 0
    reversed: int = 0
    coupons_used: int = 0
    accounts_opened: int = 0

    @property
    def total_lots(self) -> int:
        return sum(self.lots.values()) + self.welcome


def earn_for_orders(orders: QuerySet, *, program: Program | None = None) -> Earned:
    """Everything loyalty does about these orders (see the module docstring); idempotent."""
    program = program or Program.current()
    result = Earned()
    orders = orders.order_by()
    customer_ids = orders.values("customer_id")
    ids_sql, ids_params = customer_ids.query.sql_with_params()
    with transaction.atomic():
        result.accounts_opened = ledger.open_accounts(ids_sql, ids_params)
        accounts = Account.objects.filter(customer_id__in=customer_ids).values("id")
        if moved := _held_elsewhere(orders):
            # Step 4 reverses those lots too: their accounts are locked and refreshed with
            # the customers'. (A union, not an OR, which PostgreSQL would run per account.)
            accounts = accounts.union(Account.objects.filter(pk__in=moved).values("id"))
        account_sql, account_params = accounts.query.sql_with_params()
        lock_accounts(account_sql, account_params)
        for rule in Rule.objects.filter(active=True, kind__in=Rule.ORDER_KINDS):
            result.lots[rule.code] = insert_select(
                Entry, ENTRY_COLUMNS, order_lots(rule, orders, program))
        result.welcome = insert_select(Entry, ENTRY_COLUMNS, welcome_lots(orders, program))
        if connection.vendor == "postgresql" and result.total_lots > 100_000:
            # The planner's statistics predate these lots (autovacuum cannot see a running
            # transaction's rows): without them it scans every lot for the refunded few.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Entry._meta.db_table}")
        result.reversed = reverse_refunded(orders)
        result.coupons_used = mark_coupons_used(orders)
        ledger.refresh(account_sql, account_params)
    return result


def _held_elsewhere(orders: QuerySet) -> list[int]:
    """Accounts other than their customer's holding lots of orders among `orders` no longer
    paid: an order moved to another customer keeps its lots where it earned them (rare)."""
    refunded = orders.exclude(status=PAID).order_by().values("external_id")
    return sorted(set(_order_lots_of(refunded).exclude(Exists(Order.objects.filter(
        external_id=OuterRef("source_ref"), customer_id=OuterRef("account__customer_id"))))
        .values_list("account_id", flat=True)))


def _order_lots_of(external_ids: QuerySet) -> QuerySet:
    """The lots orders earned (their rules' lots and the welcome points they brought; a
    referrer's reward has the referral's id as its source_ref, which an order id may equal)."""
    # source IN (…), not an OR of sources: the (source, source_ref) index is searched on both.
    return Entry.objects.filter(
        kind=Entry.Kind.EARN, source__in=[Entry.Source.ORDER, Entry.Source.REFERRAL],
        source_ref__in=external_ids, points__gt=0,
    ).filter(Q(source=Entry.Source.ORDER) | Q(key__startswith="welcome:"))


# Step 2: the lots of one rule -------------------------------------------------------------------


def _account(field_name: str = "customer_id"):
    return Account.objects.filter(customer_id=OuterRef(field_name))


def _multiplier(rule: Rule):
    if not rule.use_tier_multiplier:
        return Value(Decimal("1"), output_field=DecimalField())
    # Joined (orders → customer → account → tier), not a subquery per order and use.
    return Coalesce(F("customer__loyalty_account__tier__multiplier"),
                    Value(Decimal("1")), output_field=DecimalField())


def _whole_points(expression):
    # 2-decimal amounts times 2-decimal multipliers are exact to 4 places; the epsilon keeps
    # SQLite's binary floating point from flooring 28.9999… to 28.
    return Cast(Floor(expression + Value(Decimal("0.000001"))), IntegerField())


def order_lots(rule: Rule, orders: QuerySet, program: Program, *,
               since_earned: bool = True) -> QuerySet:
    """The lots `rule` earns on `orders`, as a queryset of entry columns (see insert_select).

    `since_earned` counts what the rule earned before towards its cap (off for a dry run).
    """
    candidates = orders.filter(
        status=PAID, customer__loyalty_account__held_out=False,
    ).order_by().annotate(lyl_account=F("customer__loyalty_account__id"))
    if rule.valid_from:
        candidates = candidates.filter(ordered_at__gte=start_of(rule.valid_from))
    if rule.valid_until:
        candidates = candidates.filter(ordered_at__lt=end_of(rule.valid_until))
    multiplier = _multiplier(rule)
    if rule.kind == Rule.Kind.PER_AMOUNT:
        points = _whole_points(F("amount") * Value(rule.points) * multiplier)
        reason = f"{rule.title}"
    else:
        points = _whole_points(Value(Decimal(rule.points)) * multiplier)
        reason = rule.title
        if rule.kind == Rule.Kind.BUNDLE:
            candidates = candidates.filter(
                Exists(OrderLine.objects.filter(order=OuterRef("pk"), bundle__isnull=False)))
        elif rule.kind == Rule.Kind.FIRST_IN_CATEGORY:
            candidates = candidates.filter(first_in_new_category())
    candidates = candidates.annotate(lyl_points=points).filter(lyl_points__gt=0)
    if rule.cap:
        candidates = _capped(candidates, rule, since_earned=since_earned)
    today = ledger.today()
    pending_from = start_of(today - timedelta(days=program.refund_days - 1))
    day = TruncDate("ordered_at")
    available_on = AddDays(day, program.refund_days)
    return candidates.annotate(
        e_account=F("lyl_account"), e_kind=Value(Entry.Kind.EARN), e_points=F("lyl_points"),
        e_status=Case(When(ordered_at__gte=pending_from, then=Value(Entry.Status.PENDING)),
                      default=Value(Entry.Status.AVAILABLE)),
        e_reason=Value(reason[:200]), e_source=Value(Entry.Source.ORDER),
        e_source_ref=F("external_id"), e_rule=Value(rule.pk),
        e_key=Concat(Value("order:"), F("external_id"), Value(f":{rule.code}")),
        e_created_at=Value(timezone.now()), e_earned_on=day, e_available_on=available_on,
        e_expires_on=_expires_on(available_on, program), e_remaining=F("lyl_points"),
        e_shortfall=Value(0),
    ).values(*(f"e_{column}" for column in ENTRY_COLUMNS))


def first_in_new_category() -> Q:
    """The order has a course of a category the customer had bought nothing of before, and
    it is not their first order (a first order is new in every category)."""
    earlier_paid = Order.objects.filter(customer_id=OuterRef("customer_id"), status=PAID,
                                        ordered_at__lt=OuterRef("ordered_at"))
    same_category_before = OrderLine.objects.filter(
        order__customer_id=OuterRef(OuterRef("customer_id")), order__status=PAID,
        order__ordered_at__lt=OuterRef(OuterRef("ordered_at")),
        course__category=OuterRef("course__category"))
    new_category_line = OrderLine.objects.filter(
        order=OuterRef("pk"), course__isnull=False).filter(~Exists(same_category_before))
    return Q(Exists(earlier_paid)) & Q(Exists(new_category_line))


def _capped(candidates: QuerySet, rule: Rule, *, since_earned: bool) -> QuerySet:
    """Candidates with `lyl_points` cut so that the rule's cap per customer and period holds:
    what it earned before in the period, then this import's orders in date order."""
    trunc = TruncMonth if rule.cap_period == Rule.Period.MONTH else TruncYear
    candidates = candidates.annotate(lyl_period=trunc("ordered_at", output_field=DateField()))
    if since_earned:
        # An order that earned already keeps its lot (the key): it counts in `already`, and
        # must not count a second time in the running sum of the orders handed over again.
        candidates = candidates.exclude(Exists(Entry.objects.filter(key=Concat(
            Value("order:"), OuterRef("external_id"), Value(f":{rule.code}"),
            output_field=CharField()))))
        # Everything the rule gave the customer in the period before this import (late
        # orders included), this order's own lot aside (a re-import of a changed order).
        before = Entry.objects.filter(
            account_id=OuterRef("lyl_account"), rule=rule, kind=Entry.Kind.EARN,
        ).exclude(source_ref=OuterRef("external_id")).annotate(
            period=trunc("earned_on")).filter(period=OuterRef("lyl_period"))
        already = Coalesce(Subquery(before.values("account_id").annotate(
            s=Sum("points")).values("s")[:1]), Value(0))
    else:
        already = Value(0)
    running = Window(Sum("lyl_points"), partition_by=[F("customer_id"), F("lyl_period")],
                     order_by=[F("ordered_at").asc(), F("pk").asc()])
    room = Value(rule.cap) - already - (running - F("lyl_points"))
    return candidates.annotate(lyl_capped=Least(F("lyl_points"), room)).filter(
        lyl_capped__gt=0).annotate(lyl_points=F("lyl_capped"))


def _expires_on(available_on, program: Program):
    if not program.expiry_days:
        return Cast(Value(None), DateField())
    start = available_on
    if program.expiry_enabled_on:
        start = Greatest(available_on, Value(program.expiry_enabled_on), output_field=DateField())
    return AddDays(start, program.expiry_days)


# Step 3: welcome points ----------------------------------------------------------------------------


def welcome_lots(orders: QuerySet, program: Program) -> QuerySet:
    """The welcome points of referred customers whose first paid order is among `orders`."""
    if not program.welcome_points:
        return Order.objects.none()
    earlier = Order.objects.filter(customer_id=OuterRef("customer_id"), status=PAID).filter(
        Q(ordered_at__lt=OuterRef("ordered_at"))
        | Q(ordered_at=OuterRef("ordered_at"), pk__lt=OuterRef("pk")))
    referral = Referral.objects.filter(referred_id=OuterRef("customer_id"),
                                       status=Referral.Status.PENDING)
    today = ledger.today()
    pending_from = start_of(today - timedelta(days=program.refund_days - 1))
    day = TruncDate("ordered_at")
    available_on = AddDays(day, program.refund_days)
    return orders.filter(status=PAID).order_by().filter(~Exists(earlier), Exists(referral)).annotate(
        lyl_account=Subquery(_account().filter(held_out=False).values("id")[:1]),
        lyl_referral=Subquery(referral.values("id")[:1]),
    ).filter(lyl_account__isnull=False).annotate(
        e_account=F("lyl_account"), e_kind=Value(Entry.Kind.EARN),
        e_points=Value(program.welcome_points),
        e_status=Case(When(ordered_at__gte=pending_from, then=Value(Entry.Status.PENDING)),
                      default=Value(Entry.Status.AVAILABLE)),
        e_reason=Value("Welcome: referred by a friend"), e_source=Value(Entry.Source.REFERRAL),
        e_source_ref=F("external_id"), e_rule=Cast(Value(None), IntegerField()),
        e_key=Concat(Value("welcome:"), Cast("lyl_referral", output_field=CharField())),
        e_created_at=Value(timezone.now()), e_earned_on=day, e_available_on=available_on,
        e_expires_on=_expires_on(available_on, program), e_remaining=Value(program.welcome_points),
        e_shortfall=Value(0),
    ).values(*(f"e_{column}" for column in ENTRY_COLUMNS))


# Step 4: refunds --------------------------------------------------------------------------------


def reverse_refunded(orders: QuerySet) -> int:
    """Take back the points of orders among `orders` that are no longer paid; returns how many
    lots were reversed or cancelled. Run with the accounts locked (earn_for_orders does)."""
    refunded = orders.exclude(status=PAID).order_by().values("external_id")
    # Points that expired were not spent: they are no part of the shortfall.
    expired = Draw.objects.filter(lot=OuterRef("pk"), debit__kind=Entry.Kind.EXPIRE).order_by(
    ).values("lot").annotate(s=Sum("points")).values("s")[:1]
    lots = _order_lots_of(refunded).exclude(
        Exists(Entry.objects.filter(key=Concat(Value("reverse:"), OuterRef("key")))),
    ).annotate(lyl_spent=F("points") - F("remaining") - Coalesce(Subquery(expired), Value(0)),
    ).filter(Q(remaining__gt=0) | Q(lyl_spent__gt=0))  # an expired, unspent lot: nothing to do
    candidates = lots.annotate(
        e_account=F("account_id"), e_kind=Value(Entry.Kind.REVERSE),
        e_points=-F("remaining"), e_status=F("status"),
        e_reason=Concat(Value("Order "), F("source_ref"), Value(" refunded")),
        e_source=F("source"), e_source_ref=F("source_ref"), e_rule=F("rule_id"),
        e_key=Concat(Value("reverse:"), F("key")), e_created_at=Value(timezone.now()),
        e_earned_on=Value(ledger.today()), e_available_on=Cast(Value(None), DateField()),
        e_expires_on=Cast(Value(None), DateField()), e_remaining=Value(0),
        e_shortfall=F("lyl_spent"),
    ).values(*(f"e_{column}" for column in ENTRY_COLUMNS))
    written = insert_select(Entry, ENTRY_COLUMNS, candidates)
    if not written:
        return 0
    entries, draws = Entry._meta.db_table, "loyalty_draw"
    # Only these orders' reversals and lots (by the (source, source_ref) index; the whole
    # table would be read at every import with a refund otherwise).
    these, params = refunded.query.sql_with_params()
    with connection.cursor() as cursor:
        # Each reversal drew the lot's remaining points; record the draw, then empty the lot.
        cursor.execute(
            f"""INSERT INTO {draws} (debit_id, lot_id, points)
                SELECT r.id, lot.id, lot.remaining FROM {entries} r
                JOIN {entries} lot ON lot.key = SUBSTR(r.key, 9)
                WHERE r.kind = 'reverse' AND r.source IN ('order', 'referral')
                  AND r.source_ref IN ({these}) AND lot.remaining > 0
                  AND NOT EXISTS (SELECT 1 FROM {draws} d WHERE d.debit_id = r.id)""", params)
        cursor.execute(
            f"""UPDATE {entries} SET remaining = 0 WHERE remaining > 0 AND kind = 'earn'
                AND source IN ('order', 'referral') AND source_ref IN ({these}) AND EXISTS (
                SELECT 1 FROM {entries} r WHERE r.key = 'reverse:' || {entries}.key)""", params)
    return written


# Step 5: coupons --------------------------------------------------------------------------------


def mark_coupons_used(orders: QuerySet) -> int:
    """Mark used the redemptions whose coupon code a paid order among `orders` carries."""
    with_codes = orders.filter(status=PAID).exclude(coupon_code="").order_by()
    codes = with_codes.annotate(code=Upper("coupon_code")).values("code")
    first_use = with_codes.annotate(code=Upper("coupon_code")).filter(
        code=OuterRef("coupon_code")).order_by("ordered_at", "pk")
    return Redemption.objects.filter(used_at__isnull=True, coupon_code__in=codes).update(
        used_at=Subquery(first_use.values("ordered_at")[:1]),
        used_order=Subquery(first_use.values("pk")[:1]))


# Single events: completed courses, birthdays, survey answers ----------------------------------


def bonus(customer: Customer, kind: str, *, source: str, source_ref: str, key: str,
          earned_on: date | None = None) -> list[Entry]:
    """The lots the active rules of `kind` give for one event (a survey answered, a course
    completed), once per key and rule; [] for a held-out customer or when no rule applies."""
    day = earned_on or ledger.today()
    rules = Rule.objects.filter(active=True, kind=kind).filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=day),
        Q(valid_until__isnull=True) | Q(valid_until__gte=day))
    written = []
    with transaction.atomic():
        account = ledger.account_of(customer)
        if account.held_out:
            return []
        for rule in rules:
            points = rule.points
            if rule.use_tier_multiplier and account.tier_id:
                points = int(points * account.tier.multiplier)
            if rule.cap:
                points = min(points, rule.cap - earned_in_period(account, rule, day))
            if points > 0:
                written.append(ledger.credit(
                    account, points, kind=Entry.Kind.EARN, reason=rule.title, source=source,
                    source_ref=source_ref, key=f"{key}:{rule.code}", rule=rule, earned_on=day))
    return written


bonus.alters_data = True


def earned_in_period(account: Account, rule: Rule, day: date) -> int:
    first = day.replace(day=1) if rule.cap_period == Rule.Period.MONTH else day.replace(
        month=1, day=1)
    return Entry.objects.filter(account=account, rule=rule, kind=Entry.Kind.EARN,
                                earned_on__gte=first, earned_on__lte=day).aggregate(
        s=Sum("points", default=0))["s"]


# Dry run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRun:
    days: int
    orders: int
    customers: int
    points: int
    value: Decimal


def dry_run(rule: Rule, *, days: int = 90) -> DryRun:
    """What `rule` (saved or not) would have awarded on the last `days` days' orders, with
    the tiers as they are now; writes nothing."""
    program = Program.current()
    since = start_of(ledger.today() - timedelta(days=days - 1))
    if rule.kind not in Rule.ORDER_KINDS:
        return DryRun(days, 0, 0, 0, Decimal("0.00"))
    saved = rule.pk is not None
    if not saved:
        rule.pk = 0  # only written into the SELECT, never saved
    try:
        lots = order_lots(rule, Order.objects.filter(ordered_at__gte=since), program,
                          since_earned=False)
        select, params = lots.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*), COUNT(DISTINCT e_account), COALESCE(SUM(e_points), 0) "
                           f"FROM ({select}) AS lots", params)
            orders, customers, points = cursor.fetchone()
    finally:
        if not saved:
            rule.pk = None
    return DryRun(days, orders, customers, int(points),
                  (Decimal(int(points)) * program.point_value).quantize(Decimal("0.01")))
