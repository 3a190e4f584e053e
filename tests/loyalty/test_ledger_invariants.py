"""The ledger's promises under random histories (a hypothesis state machine).

Points are money to customers: never lost, never created out of nothing, never spent twice.
A model kept here, in Python, independently of the SQL, says what every lot should hold
after any sequence of: paid orders imported (the CSV import, or ORM orders handed to
`earn_for_orders`), refunds (re-imported as refunded), time passing, pending points released,
expiry switched on, off or changed and lots expired, staff adjustments (credits, debits, and
debits that must be refused), redemptions (and ones pending points must not pay for), and
replays of any of these with the same key. After every step:

- reconciliation is sound (no mismatched account, no negative or inconsistent lot);
- every account's cached available and pending equal its ledger's sums, and the model's;
- every lot's remaining is its points less its draws, never below zero, and the model's;
- available is never negative; pending points never pay for anything;
- every debit drew on the oldest available lots first (checked against the model's lots);
- a replay changes nothing at all; entries are only ever added, never changed (a lot's
  status, remaining and dates aside) nor removed.
"""

from __future__ import annotations

import io
import itertools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty import earning, expiry, ledger, reconcile, redemptions
from loyalty.models import Account, Draw, Entry, Program, Redemption, Reward, Rule
from retention.sales.models import Customer, Order
from tests.loyalty.helpers import HEADER

pytestmark = pytest.mark.django_db

CUSTOMERS = ["C-0", "C-1", "C-2"]
REFUND_DAYS = 14
REWARDS = {"small": (40, None), "big": (250, None), "stocked": (30, 2)}
START = datetime(2026, 1, 5, 12, tzinfo=UTC)


@dataclass
class Lot:
    key: str
    customer: str
    points: int
    remaining: int
    available_on: date
    status: str
    expires_on: date | None
    id: int = 0
    expired: int = 0  # taken by expiry: not spent


@dataclass
class ModelOrder:
    external_id: str
    customer: str
    day: date
    amount: Decimal
    status: str
    via: str  # "csv" or "orm"


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.traveller = time_machine.travel(START, tick=False)
        self.clock = self.traveller.start()
        self.folder = Path(tempfile.mkdtemp(prefix="loyalty-sm-"))
        self.files = itertools.count()
        self.numbers = itertools.count(1)
        self.lots: dict[str, Lot] = {}
        self.orders: dict[str, ModelOrder] = {}
        self.entries = 0  # how many entries the model expects in the ledger
        self.stock = {code: stock for code, (_points, stock) in REWARDS.items()}
        self.replays: list[tuple[str, object]] = []
        self.expiry_days: int | None = None
        self.enabled_on: date | None = None
        self.written: dict[int, tuple] = {}  # each entry as first seen
        self.draws_seen: set[tuple] = set()

    def teardown(self):
        try:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)
        finally:
            self.traveller.stop()
            shutil.rmtree(self.folder, ignore_errors=True)

    # Setting up ---------------------------------------------------------------------------

    @initialize(expiry_days=st.sampled_from([None, 30, 60]))
    def set_up(self, expiry_days):
        program = Program.current()
        program.refund_days, program.expiry_days = REFUND_DAYS, expiry_days
        program.save()
        self.expiry_days = expiry_days
        self.enabled_on = self.today() if expiry_days else None
        Rule.objects.create(code="spend", title="A point per rand", kind=Rule.Kind.PER_AMOUNT,
                            points=1)
        for code, (points, stock) in REWARDS.items():
            Reward.objects.create(code=code, title=code, kind=Reward.Kind.AMOUNT_OFF,
                                  value=Decimal(10), points=points, stock=stock)
        for external_id in CUSTOMERS:
            Customer.objects.create(external_id=external_id, name=external_id)

    # The model's reading of the ledger ----------------------------------------------------

    def today(self) -> date:
        return ledger.today()

    def expires(self, available_on: date) -> date | None:
        if not self.expiry_days:
            return None
        return max(available_on, self.enabled_on) + timedelta(days=self.expiry_days)

    def balance(self, customer: str, status: str) -> int:
        return sum(lot.remaining for lot in self.lots.values()
                   if lot.customer == customer and lot.status == status)

    def new_lot(self, key: str, customer: str, points: int, available_on: date) -> None:
        status = "pending" if available_on > self.today() else "available"
        entry = Entry.objects.get(key=key)  # written once, with these figures
        assert (entry.points, entry.remaining, entry.status, entry.available_on) == (
            points, points, status, available_on), key
        self.lots[key] = Lot(key, customer, points, points, available_on, status,
                             self.expires(available_on), entry.id)
        self.entries += 1

    def expected_draws(self, customer: str, points: int) -> dict[int, int]:
        """Oldest first: by the day the lot became available, then by when it was written."""
        draws, left = {}, points
        held = sorted((lot for lot in self.lots.values() if lot.customer == customer
                       and lot.status == "available" and lot.remaining > 0),
                      key=lambda lot: (lot.available_on, lot.id))
        for lot in held:
            take = min(left, lot.remaining)
            draws[lot.id] = take
            left -= take
            if not left:
                break
        assert left == 0, "the model asked for more than the lots hold"
        return draws

    def apply_debit(self, entry: Entry, customer: str, points: int) -> None:
        """Check the debit drew oldest first, as the model says, and record it."""
        expected = self.expected_draws(customer, points)
        actual = dict(Draw.objects.filter(debit=entry).values_list("lot_id", "points"))
        assert actual == expected, (entry.kind, expected, actual)
        by_id = {lot.id: lot for lot in self.lots.values()}
        for lot_id, take in expected.items():
            by_id[lot_id].remaining -= take
        self.entries += 1

    def snapshot(self):
        return (
            list(Entry.objects.order_by("id").values_list(
                "id", "key", "kind", "points", "status", "remaining", "shortfall",
                "available_on", "expires_on")),
            list(Draw.objects.order_by("id").values_list("debit_id", "lot_id", "points")),
            list(Account.objects.order_by("id").values_list(
                "id", "available", "pending", "lifetime_earned")),
            list(Redemption.objects.order_by("id").values_list("id", "key", "coupon_code")),
            list(Reward.objects.order_by("id").values_list("code", "stock")),
        )

    def customer(self, external_id: str) -> Customer:
        return Customer.objects.get(external_id=external_id)

    def import_rows(self, rows: list[ModelOrder]) -> str:
        text = HEADER + "".join(
            f"{o.external_id},{o.customer},{o.day.isoformat()},{o.amount},,,{o.status},,,ZAR\n"
            for o in rows)
        path = self.folder / f"orders-{next(self.files)}.csv"
        path.write_text(text)
        call_command("import_orders", str(path), stdout=io.StringIO(), stderr=io.StringIO(),
                     verbosity=0)
        return str(path)

    # Orders ---------------------------------------------------------------------------------

    @rule(batch=st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.integers(0, 40000),
                                   st.integers(0, 30)), min_size=1, max_size=3),
          via=st.sampled_from(["csv", "orm"]))
    def paid_orders(self, batch, via):
        written = []
        for customer, cents, days_ago in batch:
            external_id = f"O-{next(self.numbers)}"
            order = ModelOrder(external_id, customer, self.today() - timedelta(days=days_ago),
                               Decimal(cents) / 100, "paid", via)
            self.orders[external_id] = order
            written.append(order)
        if via == "csv":
            path = self.import_rows(written)
            self.replays.append(("import", path))
        else:
            for order in written:
                Order.objects.create(
                    external_id=order.external_id, customer=self.customer(order.customer),
                    ordered_at=datetime.combine(order.day, datetime.min.time(), UTC),
                    amount=order.amount, currency="ZAR", fingerprint=order.external_id)
            ids = [order.external_id for order in written]
            earning.earn_for_orders(Order.objects.filter(external_id__in=ids))
            self.replays.append(("earn", ids))
        for order in written:
            points = int(order.amount)  # a point per whole rand
            if points > 0:
                self.new_lot(f"order:{order.external_id}:spend", order.customer, points,
                             order.day + timedelta(days=REFUND_DAYS))

    def paid(self):
        return sorted(o.external_id for o in self.orders.values() if o.status == "paid")

    @precondition(lambda self: self.paid())
    @rule(data=st.data())
    def refund(self, data):
        order = self.orders[data.draw(st.sampled_from(self.paid()), label="order")]
        order.status = "refunded"
        if order.via == "csv":
            self.replays.append(("import", self.import_rows([order])))
        else:
            Order.objects.filter(external_id=order.external_id).update(status="refunded")
            earning.earn_for_orders(Order.objects.filter(external_id=order.external_id))
            self.replays.append(("earn", [order.external_id]))
        lot = self.lots.get(f"order:{order.external_id}:spend")
        if lot is None:
            assert not Entry.objects.filter(source_ref=order.external_id).exclude(
                kind="earn").exists()
            return
        spent = lot.points - lot.remaining - lot.expired
        if not lot.remaining and not spent:  # it all expired: nothing to take back
            assert not Entry.objects.filter(key=f"reverse:{lot.key}").exists()
            return
        reverse = Entry.objects.get(key=f"reverse:{lot.key}")
        # Pending: cancelled whole. Available: what is left taken back; what was spent (not
        # what expired) is the shortfall.
        assert (reverse.kind, reverse.points, reverse.status, reverse.shortfall) == (
            "reverse", -lot.remaining, lot.status, spent)
        taken = dict(Draw.objects.filter(debit=reverse).values_list("lot_id", "points"))
        assert taken == ({lot.id: lot.remaining} if lot.remaining else {})
        lot.remaining = 0
        self.entries += 1

    # Time, release, expiry ------------------------------------------------------------------

    @rule(days=st.integers(1, 45))
    def time_passes(self, days):
        self.clock.shift(timedelta(days=days))

    @rule(days=st.integers(1, 45))
    def nights_pass(self, days):
        """The nightly pipeline's order: release, then expire."""
        self.clock.shift(timedelta(days=days))
        self.release()
        self.expire()

    @rule()
    def release(self):
        day = self.today()
        due = [lot for lot in self.lots.values()
               if lot.status == "pending" and lot.remaining > 0 and lot.available_on <= day]
        assert expiry.release(day) == len(due)
        for lot in due:
            lot.status = "available"
        self.replays.append(("release", day))

    @rule()
    def expire(self):
        self.expire_on(self.today())

    def due_on(self, day: date) -> dict[int, Lot]:
        return {lot.id: lot for lot in self.lots.values()
                if lot.status == "available" and lot.remaining > 0
                and lot.expires_on is not None and lot.expires_on <= day}

    def expire_on(self, day: date) -> None:
        due = self.due_on(day)
        assert expiry.expire(day) == len(due)
        written = Entry.objects.filter(kind="expire", key__in=[f"expire:{i}" for i in due])
        assert {int(e.key.split(":")[1]): -e.points for e in written} == {
            i: lot.remaining for i, lot in due.items()}
        for lot in due.values():
            lot.expired += lot.remaining
            lot.remaining = 0
            self.entries += 1
        self.replays.append(("expire", day))

    @rule(days=st.sampled_from([None, 30, 60, 90]))
    def expiry_changed(self, days):
        program = Program.current()
        program.expiry_days = days
        program.save()
        if days and not self.expiry_days:
            self.enabled_on = self.today()
        elif not days:
            self.enabled_on = None
        self.expiry_days = days
        for lot in self.lots.values():
            if lot.remaining > 0:
                lot.expires_on = self.expires(lot.available_on)
        if days and self.enabled_on == self.today():
            # Switched on (today): nothing expires at once, the night after included.
            assert expiry.expire(self.today()) == 0

    # Staff adjustments ------------------------------------------------------------------------

    @rule(customer=st.sampled_from(CUSTOMERS),
          points=st.integers(-400, 400).filter(lambda n: n != 0))
    def adjust(self, customer, points):
        key = f"adjust-{next(self.numbers):05d}"
        if points < 0 and -points > self.balance(customer, "available"):
            before = self.snapshot()
            with pytest.raises(ledger.InsufficientPoints):
                ledger.adjust(self.customer(customer), points, reason="Correction", key=key,
                              by="staff")
            assert self.snapshot() == before
            return
        made = ledger.adjust(self.customer(customer), points, reason="Correction", key=key,
                             by="staff")
        assert made.created and made.entry.points == points
        if points > 0:
            self.new_lot(key, customer, points, self.today())
        else:
            self.apply_debit(made.entry, customer, -points)
        self.replays.append(("adjust", (customer, points, key)))

    @precondition(lambda self: any(self.balance(c, "pending") for c in CUSTOMERS))
    @rule(data=st.data(), how=st.sampled_from(["adjust", "redeem"]))
    def pending_points_pay_for_nothing(self, data, how):
        customer = data.draw(st.sampled_from(
            [c for c in CUSTOMERS if self.balance(c, "pending")]), label="customer")
        cost = self.balance(customer, "available") + 1  # ≤ available + pending
        reward = Reward.objects.get_or_create(
            code=f"costs-{cost}", defaults={"title": f"{cost}", "points": cost,
                                            "kind": Reward.Kind.CONTENT})[0]
        before = self.snapshot()
        if how == "adjust":
            with pytest.raises(ledger.InsufficientPoints):
                ledger.adjust(self.customer(customer), -cost, reason="Too much",
                              key=f"adjust-{next(self.numbers):05d}", by="staff")
        else:
            with pytest.raises(redemptions.RedemptionRefused) as refused:
                redemptions.redeem(self.customer(customer), reward,
                                   key=f"redeem-{next(self.numbers):05d}")
            assert refused.value.code == "insufficient_points"
        assert self.snapshot() == before

    # Redemptions ------------------------------------------------------------------------------

    @rule(customer=st.sampled_from(CUSTOMERS), code=st.sampled_from(sorted(REWARDS)))
    def redeem(self, customer, code):
        key = f"redeem-{next(self.numbers):05d}"
        cost = REWARDS[code][0]
        reward = Reward.objects.get(code=code)
        if self.balance(customer, "available") < cost or self.stock[code] == 0:
            before = self.snapshot()
            with pytest.raises(redemptions.RedemptionRefused) as refused:
                redemptions.redeem(self.customer(customer), reward, key=key)
            assert refused.value.code == (
                "insufficient_points" if self.balance(customer, "available") < cost
                else "out_of_stock")
            assert self.snapshot() == before
            return
        made = redemptions.redeem(self.customer(customer), reward, key=key)
        assert made.created and made.redemption.points == cost
        assert made.redemption.entry.points == -cost
        if self.stock[code] is not None:
            self.stock[code] -= 1
        self.apply_debit(made.redemption.entry, customer, cost)
        assert made.redemption.available_after == self.balance(customer, "available")
        self.replays.append(("redeem", (customer, code, key)))

    # Replays -----------------------------------------------------------------------------------

    @precondition(lambda self: self.replays)
    @rule(data=st.data())
    def replay(self, data):
        kind, what = data.draw(st.sampled_from(self.replays), label="replay")
        before = self.snapshot()
        if kind == "import":
            call_command("import_orders", what, stdout=io.StringIO(), stderr=io.StringIO(),
                         verbosity=0)
        elif kind == "earn":
            earning.earn_for_orders(Order.objects.filter(external_id__in=what))
        elif kind == "release":
            assert expiry.release(what) == 0
        elif kind == "expire":
            if self.due_on(what):
                # Not a replay: lots released since (nights without a release) whose date
                # had passed are due, once. (Every night releases, then expires.)
                self.expire_on(what)
                return
            assert expiry.expire(what) == 0
        elif kind == "adjust":
            customer, points, key = what
            # The same key with other figures is still the first adjustment.
            again = ledger.adjust(self.customer(customer), points * 2, reason="Again", key=key,
                                  by="staff")
            assert not again.created and again.entry.points == points
        elif kind == "redeem":
            customer, code, key = what
            again = redemptions.redeem(self.customer(customer), Reward.objects.get(code=code),
                                       key=key)
            assert not again.created
        assert self.snapshot() == before, kind

    @rule()
    def everything_earns_again(self):
        """The nightly safety net: every order handed to earning once more changes nothing."""
        before = self.snapshot()
        earning.earn_for_orders(Order.objects.all())
        assert self.snapshot() == before

    # Invariants --------------------------------------------------------------------------------

    @invariant()
    def reconciliation_is_sound(self):
        report = reconcile.reconcile()
        assert (report["mismatched_accounts"], report["negative_lots"],
                report["inconsistent_lots"]) == (0, 0, 0), report
        assert reconcile.is_sound(report)
        assert report["entries"] == self.entries
        assert report["liability"]["points"] == sum(
            lot.remaining for lot in self.lots.values())

    @invariant()
    def entries_are_only_ever_added(self):
        """Append-only: an entry, once written, keeps what it says (a lot's status, remaining
        and dates aside), and stays."""
        now = {row[0]: row[1:] for row in Entry.objects.values_list(
            "id", "account_id", "kind", "points", "key", "reason", "source", "source_ref",
            "shortfall", "created_at", "earned_on")}
        assert set(self.written) <= set(now)
        for entry_id, fields in self.written.items():
            assert now[entry_id] == fields, entry_id
        self.written = now
        drawn = list(Draw.objects.values_list("debit_id", "lot_id", "points"))
        assert self.draws_seen <= set(drawn)
        self.draws_seen = set(drawn)

    @invariant()
    def lots_hold_their_points_less_their_draws(self):
        drawn = dict(Draw.objects.values("lot_id").annotate(s=Sum("points")).values_list(
            "lot_id", "s"))
        stored = {e.key: e for e in Entry.objects.filter(kind__in=["earn", "adjust"],
                                                         points__gt=0)}
        assert set(stored) == set(self.lots)
        for key, lot in self.lots.items():
            entry = stored[key]
            assert entry.remaining >= 0
            assert entry.remaining == entry.points - drawn.get(entry.id, 0), key
            assert (entry.remaining, entry.status, entry.expires_on) == (
                lot.remaining, lot.status, lot.expires_on), key
        # Debits draw only what they took; nothing else is ever drawn on.
        assert not Draw.objects.exclude(lot__kind__in=["earn", "adjust"]).exists()
        for entry in Entry.objects.filter(points__lt=0):
            assert -entry.points == (Draw.objects.filter(debit=entry).aggregate(
                s=Sum("points", default=0))["s"]), entry.key

    @invariant()
    def balances_are_the_ledger_and_the_model(self):
        for account in Account.objects.select_related("customer"):
            sums = Entry.objects.filter(account=account)
            available = sums.filter(status="available").aggregate(s=Sum("points", default=0))["s"]
            pending = sums.filter(status="pending").aggregate(s=Sum("points", default=0))["s"]
            assert account.available >= 0
            assert (account.available, account.pending) == (available, pending)
            customer = account.customer.external_id
            assert (account.available, account.pending) == (
                self.balance(customer, "available"), self.balance(customer, "pending"))


def test_the_ledger_keeps_its_promises_whatever_happens():
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=35, stateful_step_count=50, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
