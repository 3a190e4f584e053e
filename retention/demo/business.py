"""The demo business: two years of an online-course business, drawn from one generator.

`DemoBusiness.build` fills the domain tables with customers, a catalogue of 30 courses and
5 bundles, two years of orders ending at the as-of date, a price update about
four months before it, memberships, enrolments and support tickets.

Invariants:
- The same seed, as-of date and customer count give the same rows, apart from
  primary keys and automatic timestamps: every random draw comes from one
  `numpy.random.default_rng(seed)` in a fixed order, and no set is iterated.
- Orders go through `ingest.import_rows`, exactly like a CSV import, so their
  lines, fingerprints and the customers' cached summaries are the import's own.
  Orders dated before the price update are imported before it is applied, so
  their lines are split by the prices of their day.
- Repeat purchases follow the BG/NBD story that `fit_clv` fits (Fader, Hardie
  and Lee, 2005): each customer buys at a rate lambda ~ Gamma(r, alpha) per
  week and, after each repeat purchase, drops out with probability
  p ~ Beta(a, b). Most customers therefore buy once and a minority keep coming
  back, as in the business's real data.
- Everything is written in one transaction: a failure leaves the database as it was.

Membership renewals are not billed as orders here: the demo's orders are the
course purchases, so that `fit_clv` on demo data sees the process above.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.utils import timezone
from django.utils.text import slugify

from retention.demo.data import (
    ACQUISITION_GROWTH,
    ALPHA,
    BATCH,
    BUNDLES,
    CATALOGUE,
    COMPANY_KINDS,
    COMPANY_WORDS,
    COMPLAINT_SHARE,
    COUPONS,
    DEPARTMENTS,
    EARLY_ACCESS_COURSE,
    FIRST_NAMES,
    HISTORY_DAYS,
    INSTITUTION_KINDS,
    LAST_NAMES,
    LEVEL_DIGIT,
    LEVEL_PRICE_TENS,
    MEMBERSHIP_PLANS,
    NEW_COURSES,
    ORGANISATION_DROPOUT_FACTOR,
    ORGANISATION_RATE_FACTOR,
    PRICE_UPDATE_DAYS_BEFORE,
    RECENT_BUNDLE,
    SECTOR_WEIGHTS,
    SECTORS,
    SOURCE_WEIGHTS,
    SOURCES,
    TICKET_CATEGORIES,
    TICKET_SUBJECTS,
    TICKET_WEIGHTS,
    TOWNS,
    A,
    B,
    R,
)
from retention.money import round_half_up
from retention.periods import add_months, quarter_start
from retention.sales import catalogue, ingest
from retention.sales.models import Bundle, Course, Customer, Enrolment, Membership, SupportTicket


def list_price(amount: Decimal) -> Decimal:
    """Round to a shop price ending in 9 (1 499.00), half up: the one rounding of list prices."""
    return round_half_up(amount / 10, 0) * 10 - 1


def discounted(amount: Decimal, percent: int) -> Decimal:
    """Return `amount` less `percent`, rounded half up to the cent: the one rounding of coupons."""
    return round_half_up(amount * (100 - percent) / 100)


@dataclass
class PlannedOrder:
    customer: int  # index into the customer arrays
    at: datetime
    items: list  # Course and Bundle instances
    amount: Decimal
    status: str
    coupon: str
    external_id: str = ""


class DemoBusiness:
    """One generated business: `build` draws everything from `rng` and writes it, step by step.

    Customers are kept in arrays indexed by i, in order of acquisition, so that a
    referrer always has a smaller index than the customers they brought in.
    """

    def __init__(self, rng: np.random.Generator, *, as_of: date, customers: int):
        self.rng, self.as_of, self.n = rng, as_of, customers
        self.zone = timezone.get_default_timezone()
        self.start = as_of - timedelta(days=HISTORY_DAYS)
        self.end_at = self._at(as_of + timedelta(days=1), 0)  # the end of the as-of day
        # 06:00, before opening hours, so no order shares the moment of the change.
        self.price_update_at = self._at(as_of - timedelta(days=PRICE_UPDATE_DAYS_BEFORE), 6 * 3600)

    def build(self) -> None:
        self.make_catalogue()
        self.make_customers()
        orders = self.plan_orders()
        self.write_orders(orders)
        member_enrolments = self.make_memberships()
        self.make_enrolments(orders, member_enrolments)
        self.make_tickets(orders)

    # Helpers ------------------------------------------------------------------------------

    def _at(self, day: date, seconds: int) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.zone) + timedelta(seconds=seconds)

    def _moment(self, day: date) -> datetime:
        """A random moment of `day` in business hours (07:00-23:00 in the business zone)."""
        return self._at(day, int(self.rng.integers(7 * 3600, 23 * 3600)))

    def _day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=int(self.rng.integers((last - first).days + 1)))

    def _pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def price(self, offering, at: datetime) -> Decimal:
        before, after = self.prices[offering.code]
        return after if at >= self.price_update_at else before

    # Catalogue ----------------------------------------------------------------------------

    def make_catalogue(self) -> None:
        """Courses, follow-ons and bundles, with the prices before and after the update."""
        self.make_courses()
        self.make_bundles()

    def make_courses(self) -> None:
        """Courses by category and level, their prices before and after the update, and the
        follow-ons from each level to the next."""
        rng, as_of = self.rng, self.as_of
        update_day = self.price_update_at.date()
        q_start = quarter_start(as_of)
        new_launch = {
            title: q_start + timedelta(days=round(share * (as_of - q_start).days))
            for title, share in zip(NEW_COURSES, (0.1, 0.45, 0.8), strict=True)
        }
        self.courses: list[Course] = []
        self.prices: dict[str, tuple[Decimal, Decimal]] = {}  # code -> (before, after the update)
        self.popularity: dict[str, float] = {}
        for category, (prefix, entries) in CATALOGUE.items():
            established = [title for _, title in entries if title not in new_launch]
            offsets = sorted(int(x) for x in rng.integers(-1095, -150, size=len(established)))
            offsets[0] = min(offsets[0], -HISTORY_DAYS - 60)  # something to sell on day one
            launch = {title: as_of + timedelta(days=d) for title, d in zip(established, offsets)}
            launch |= new_launch
            numbers = Counter()
            for level, title in entries:
                numbers[level] += 1
                low, high = LEVEL_PRICE_TENS[level]
                course = Course(
                    code=f"{prefix}-{LEVEL_DIGIT[level]}{numbers[level]:02d}", title=title,
                    price=Decimal(int(rng.integers(low, high)) * 10 - 1),
                    launched_on=launch[title], category=category, level=level,
                )
                self.courses.append(course)
                # New courses sell well at first: the launch is what brings buyers back.
                boost = 2 if title in new_launch else 1
                self.popularity[course.code] = rng.lognormal(0, 0.5) * boost

        # Most prices go up 5-20 %, two go down, a few stay; courses launched after the
        # update only ever had one price.
        for course in self.courses:
            self.prices[course.code] = (course.price, course.price)
        existing = [course for course in self.courses if course.launched_on < update_day]
        falling = [int(x) for x in rng.choice(len(existing), size=2, replace=False)]
        for index, course in enumerate(existing):
            if index in falling:
                percent = -int(rng.integers(5, 16))
            elif rng.random() < 0.85:
                percent = int(rng.integers(5, 21))
            else:
                continue
            after = list_price(course.price * (100 + percent) / 100)
            self.prices[course.code] = (course.price, after)
        Course.objects.bulk_create(self.courses)

        # Follow-ons: within a category, each level leads to the next one.
        follow = Course.follow_ons.through
        links = [(a, b) for a in self.courses for b in self.courses
                 if a.category == b.category and LEVEL_DIGIT[b.level] == LEVEL_DIGIT[a.level] + 1]
        follow.objects.bulk_create([follow(from_course=a, to_course=b) for a, b in links])
        self.prerequisites = {course.code: [a.code for a, b in links if b is course]
                              for course in self.courses}

    def make_bundles(self) -> None:
        """Bundles of existing courses at 70-80 % of their prices, one launched recently."""
        rng, as_of = self.rng, self.as_of
        update_day = self.price_update_at.date()
        by_title = {course.title: course for course in self.courses}
        self.bundles: list[Bundle] = []
        self.bundle_courses: dict[str, list[Course]] = {}
        for code, title, titles in BUNDLES:
            members = [by_title[name] for name in titles]
            if code == RECENT_BUNDLE:
                launched_on = as_of - timedelta(days=int(rng.integers(20, 36)))
            else:
                latest = max(course.launched_on for course in members)
                launched_on = min(latest + timedelta(days=int(rng.integers(14, 90))),
                                  as_of - timedelta(days=135))
            era = int(launched_on >= update_day)  # 0: launched before the update, 1: after
            # Bundles sell at 70-80 % of their courses' prices of the day.
            share = Decimal(int(rng.integers(70, 81))) / 100
            before = list_price(sum(self.prices[c.code][era] for c in members) * share)
            after = before
            if not era:
                ceiling = list_price(sum(self.prices[c.code][1] for c in members) * Decimal("0.85"))
                after = min(list_price(before * (100 + int(rng.integers(5, 16))) / 100), ceiling)
            self.prices[code] = (before, after)
            self.bundles.append(
                Bundle(code=code, title=title, price=before, launched_on=launched_on))
            self.bundle_courses[code] = members
        Bundle.objects.bulk_create(self.bundles)
        contains = Bundle.courses.through
        contains.objects.bulk_create([contains(bundle=bundle, course=course)
                                      for bundle in self.bundles
                                      for course in self.bundle_courses[bundle.code]])

    def apply_price_update(self) -> None:
        """Save the new prices through the catalogue, which records each PriceChange."""
        for offering in [*self.courses, *self.bundles]:
            before, after = self.prices[offering.code]
            if after != before:
                offering.price = after
                catalogue.save_offering(
                    offering, note="Annual price update", changed_at=self.price_update_at
                )

    # Customers ----------------------------------------------------------------------------

    def make_customers(self) -> None:
        """Customers with their BG/NBD rate and drop-out probability, acquired over two years."""
        rng, n = self.rng, self.n
        weeks = (HISTORY_DAYS + 1) / 7
        # Inverse CDF of a density growing like e^(g t) over the two years.
        u = np.sort(rng.random(n))
        self.acquired = np.log1p(u * np.expm1(ACQUISITION_GROWTH)) / ACQUISITION_GROWTH * weeks
        self.is_org = rng.random(n) < 0.25
        rate = rng.gamma(R, 1 / ALPHA, n) * np.where(self.is_org, ORGANISATION_RATE_FACTOR, 1.0)
        self.rate = np.maximum(rate, 1e-9)  # Gamma(0.25) can underflow to 0
        self.dropout = rng.beta(A, B, n) * np.where(self.is_org, ORGANISATION_DROPOUT_FACTOR, 1.0)

        self.customers: list[Customer] = []
        self.first_order_at: list[datetime] = []
        referrer_of: dict[int, int] = {}
        for i in range(n):
            organisation = bool(self.is_org[i])
            first, last = self._pick(FIRST_NAMES), self._pick(LAST_NAMES)
            source = SOURCES[int(rng.choice(len(SOURCES), p=SOURCE_WEIGHTS[organisation]))]
            if source == "referral":
                if i == 0:
                    source = "organic"  # nobody to refer the first customer
                else:
                    # Customers who buy often are the ones who recommend.
                    weights = self.rate[:i] / self.rate[:i].sum()
                    referrer_of[i] = int(rng.choice(i, p=weights))
            day = self.start + timedelta(days=min(int(self.acquired[i] * 7), HISTORY_DAYS))
            first_order_at = self._moment(day)
            self.first_order_at.append(first_order_at)
            customer = Customer(
                external_id=f"CUS-{i + 1:05d}", name=f"{first} {last}",
                acquisition_source=source, marketing_consent=bool(rng.random() < 0.8),
                # Most sign up the day they buy; some a week or two before.
                signed_up_at=first_order_at - timedelta(minutes=int(rng.integers(5, 20160))),
            )
            if organisation:
                customer.customer_type = Customer.Type.ORGANISATION
                customer.sector = SECTORS[int(rng.choice(len(SECTORS), p=SECTOR_WEIGHTS))]
                customer.organisation_name = self._organisation_name(customer.sector)
                domain = slugify(customer.organisation_name)
                customer.email = f"{first}.{last.replace(' ', '')}@{domain}.example.com".lower()
            else:
                customer.email = f"{first}.{last.replace(' ', '')}{i + 1}@example.com".lower()
                if rng.random() < 0.4:
                    age_days = int(rng.integers(20, 66) * 365.25 + rng.integers(365))
                    customer.birth_date = self.as_of - timedelta(days=age_days)
            self.customers.append(customer)
        Customer.objects.bulk_create(self.customers, batch_size=BATCH)
        # Referrers need primary keys, so referrals are linked after the insert.
        for i, j in referrer_of.items():
            self.customers[i].referred_by = self.customers[j]
        Customer.objects.bulk_update(
            [self.customers[i] for i in referrer_of], ["referred_by"], batch_size=BATCH
        )

    def _organisation_name(self, sector: str) -> str:
        if sector == "company":
            return f"{self._pick(COMPANY_WORDS)} {self._pick(COMPANY_KINDS)}"
        if sector == "government":
            return f"Department of {self._pick(DEPARTMENTS)}, {self._pick(TOWNS)} District"
        if sector == "municipality":
            return f"{self._pick(TOWNS)} Municipality"
        return f"{self._pick(TOWNS)} {self._pick(INSTITUTION_KINDS)}"

    # Orders -------------------------------------------------------------------------------

    def plan_orders(self) -> list[PlannedOrder]:
        """Every order of every customer, in date order, with order ids assigned."""
        rng, horizon = self.rng, (HISTORY_DAYS + 1) / 7  # weeks; later purchases are unseen
        self.owned: list[set[str]] = [set() for _ in range(self.n)]  # course codes; never iterated
        orders = self._early_access_orders()
        for i in range(self.n):
            # BG/NBD: purchases arrive at rate lambda until the customer drops out,
            # which can happen only just after a repeat purchase.
            repeats, t = [], self.acquired[i]
            while (t := t + rng.exponential(1 / self.rate[i])) < horizon:
                repeats.append(min(int(t * 7), HISTORY_DAYS))
                if rng.random() < self.dropout[i]:
                    break
            orders.append(self._order(i, self.first_order_at[i], repeat=False))
            for day in repeats:
                orders.append(self._order(i, self._moment(self.start + timedelta(days=day)),
                                          repeat=True))
        orders.sort(key=lambda order: (order.at, order.customer))
        for number, order in enumerate(orders, start=1):
            order.external_id = f"ORD-{number:06d}"
        return orders

    def _early_access_orders(self) -> list[PlannedOrder]:
        """A few loyal customers buy the early-access course in the two weeks before its launch."""
        rng = self.rng
        course = next(course for course in self.courses if course.title == EARLY_ACCESS_COURSE)
        invited_before = self._at(course.launched_on - timedelta(days=30), 0)
        eligible = [i for i in range(self.n) if self.first_order_at[i] < invited_before]
        count = min(len(eligible), max(3, round(self.n * 0.005)))
        if not count:
            return []
        weights = self.rate[eligible] / self.rate[eligible].sum()
        orders = []
        for i in sorted(rng.choice(eligible, size=count, replace=False, p=weights).tolist()):
            at = self._moment(course.launched_on - timedelta(days=int(rng.integers(1, 15))))
            coupon = "EARLYBIRD20" if rng.random() < 0.5 else ""
            price = self.price(course, at)
            amount = discounted(price, COUPONS[coupon]) if coupon else price
            orders.append(PlannedOrder(i, at, [course], amount, "paid", coupon))
            self.owned[i].add(course.code)
        return orders

    def _order(self, i: int, at: datetime, *, repeat: bool) -> PlannedOrder:
        rng = self.rng
        items = self._items(i, at.date(), repeat=repeat)
        for item in items:
            courses = self.bundle_courses.get(item.code, [item])
            self.owned[i].update(course.code for course in courses)
        team = bool(self.is_org[i]) and (len(items) > 1 or isinstance(items[0], Bundle))
        coupon = self._coupon(i, at.date(), repeat=repeat, team=team)
        amount = sum(self.price(item, at) for item in items)
        if coupon:
            amount = discounted(amount, COUPONS[coupon])
        roll = rng.random()
        status = "refunded" if roll < 0.03 else "cancelled" if roll < 0.04 else "paid"
        status = status if amount else "paid"  # nothing to refund on a free order
        return PlannedOrder(i, at, items, amount, status, coupon)

    def _items(self, i: int, day: date, *, repeat: bool) -> list:
        """Mostly one course; sometimes a bundle or two courses; organisations buy bigger."""
        rng, owned = self.rng, self.owned[i]
        courses = [course for course in self.courses if course.launched_on <= day]
        bundles = [bundle for bundle in self.bundles if bundle.launched_on <= day]
        bundle_share, several_share = (0.25, 0.25) if self.is_org[i] else (0.08, 0.12)
        roll = rng.random()
        if roll < bundle_share and bundles:
            return [self._pick(bundles)]
        if roll >= bundle_share + several_share:
            size = 1
            # A returning customer often takes the next step after a course they own.
            next_steps = [c for c in courses if c.code not in owned
                          and any(p in owned for p in self.prerequisites[c.code])]
            if repeat and next_steps and rng.random() < 0.5:
                return [self._pick(next_steps)]
        else:
            size = int(rng.integers(2, 4)) if self.is_org[i] else 2
        weights = np.array([self.popularity[c.code] * (0.05 if c.code in owned else 1.0)
                            for c in courses])
        picks = rng.choice(len(courses), size=min(size, len(courses)), replace=False,
                           p=weights / weights.sum())
        return [courses[int(k)] for k in sorted(picks)]

    def _coupon(self, i: int, day: date, *, repeat: bool, team: bool) -> str:
        rng = self.rng
        if not self.is_org[i] and rng.random() < 0.015:
            return "SCHOLARSHIP"  # a free course
        roll = rng.random()
        if (11, 22) <= (day.month, day.day) <= (12, 1) and roll < 0.4:
            return "BLACKFRIDAY25"
        if team and roll < 0.3:
            return "TEAM20"
        if not repeat and roll < 0.08:
            return "WELCOME10"
        if repeat and roll < 0.1:
            return "LOYAL15"
        return ""

    def write_orders(self, orders: list[PlannedOrder]) -> None:
        """Import the orders dated before the price update, apply it, then import the rest."""
        self._import([order for order in orders if order.at < self.price_update_at])
        self.apply_price_update()
        self._import([order for order in orders if order.at >= self.price_update_at])

    def _import(self, orders: list[PlannedOrder]) -> None:
        currency = settings.RETENTION_CURRENCY
        rows = (
            (line, {
                "order_id": order.external_id,
                "customer_id": self.customers[order.customer].external_id,
                "ordered_at": order.at.isoformat(),
                "amount": f"{order.amount:.2f}",
                "status": order.status,
                "items": "|".join(item.code for item in order.items),
                "coupon_code": order.coupon,
                "currency": currency,
            })
            for line, order in enumerate(orders, start=1)
        )
        errors = []
        result = ingest.import_rows(rows, on_error=errors.append)
        if result.invalid:
            raise DemoDataInvalid("; ".join(str(error) for error in errors[:5]))

    # Memberships, enrolments, tickets -----------------------------------------------------

    def make_memberships(self) -> list[tuple[date, int, Course, str]]:
        """About 5 % of customers hold a membership; return the enrolments it brings."""
        rng, as_of = self.rng, self.as_of
        memberships, enrolments = [], []
        for i in range(self.n):
            if rng.random() >= 0.05:
                continue
            plan, monthly, yearly = MEMBERSHIP_PLANS[bool(self.is_org[i])]
            is_yearly = rng.random() < 0.35
            months = 12 if is_yearly else 1
            first_day = self.first_order_at[i].date()
            # Members join within four months of their first order.
            started_on = self._day_between(first_day, min(first_day + timedelta(days=120), as_of))
            # Paid periods before the customer stops renewing: yearly members stay longer.
            periods = int(rng.geometric(0.3 if is_yearly else 0.08))
            membership = Membership(
                external_id=f"MEM-{len(memberships) + 1:05d}", customer=self.customers[i],
                plan=plan, interval="year" if is_yearly else "month",
                price=yearly if is_yearly else monthly, started_on=started_on,
            )
            access_until = add_months(started_on, periods * months) - timedelta(days=1)
            if access_until < as_of:  # over: renewal was turned off during the last period
                membership.ended_on = access_until
                notice = timedelta(days=int(rng.integers(1, 25)))
                cancelled_on = max(started_on, access_until - notice)
                membership.auto_renew, membership.cancelled_at = False, self._moment(cancelled_on)
            elif rng.random() < 0.15:  # still running, but cancelled: access to the period's end
                elapsed = 1
                while add_months(started_on, elapsed * months) <= as_of:
                    elapsed += 1
                membership.ended_on = add_months(started_on, elapsed * months) - timedelta(days=1)
                cancelled_on = max(started_on, as_of - timedelta(days=int(rng.integers(0, 20))))
                membership.auto_renew, membership.cancelled_at = False, self._moment(cancelled_on)
            memberships.append(membership)
            last_day = min(membership.ended_on or as_of, as_of)
            for _ in range(int(rng.integers(1, 5))):
                day = self._day_between(started_on, last_day)
                courses = [course for course in self.courses if course.launched_on <= day]
                enrolments.append((day, i, self._pick(courses), Enrolment.Source.MEMBERSHIP))
        Membership.objects.bulk_create(memberships, batch_size=BATCH)
        return enrolments

    def make_enrolments(self, orders: list[PlannedOrder], extra: list) -> None:
        """One enrolment per customer and course, from its first paid order or membership."""
        candidates = list(extra)
        for order in orders:
            if order.status != "paid":
                continue
            for item in order.items:
                if isinstance(item, Bundle):
                    courses, source = self.bundle_courses[item.code], Enrolment.Source.BUNDLE
                else:
                    courses, source = [item], Enrolment.Source.PURCHASE
                if not order.amount:
                    source = Enrolment.Source.FREE
                for course in courses:  # early access starts on the launch day
                    candidates.append((max(order.at.date(), course.launched_on), order.customer,
                                       course, source))
        candidates.sort(key=lambda c: (c[0], c[1], c[2].code))
        seen, enrolments = set(), []
        for started_on, i, course, source in candidates:
            if (i, course.code) not in seen:
                seen.add((i, course.code))
                enrolment = Enrolment(customer=self.customers[i], course=course, source=source,
                                      started_on=started_on)
                self._progress(enrolment)
                enrolments.append(enrolment)
        Enrolment.objects.bulk_create(enrolments, batch_size=BATCH)

    def _progress(self, enrolment: Enrolment) -> None:
        """Progress so far: some never start, almost half give up, the rest finish at their pace."""
        rng, start = self.rng, enrolment.started_on
        elapsed = (self.as_of - start).days
        if rng.random() < 0.1:
            return  # bought, never opened
        pace = float(rng.lognormal(np.log(60), 0.6))  # days to finish, median 60
        gives_up_at = float(rng.uniform(0.05, 0.6)) if rng.random() < 0.45 else None
        if gives_up_at is not None and elapsed >= pace * gives_up_at:
            enrolment.progress_percent = round(gives_up_at * 100)
            last_day = start + timedelta(days=int(pace * gives_up_at))
        elif elapsed >= pace:
            enrolment.progress_percent = 100
            last_day = enrolment.completed_on = start + timedelta(days=int(pace))
        else:
            enrolment.progress_percent = min(99, max(1, int(elapsed / pace * 100)))
            last_day = self.as_of - timedelta(days=int(rng.integers(0, min(elapsed, 14) + 1)))
        enrolment.last_activity_at = self._moment(last_day)

    def make_tickets(self, orders: list[PlannedOrder]) -> None:
        """Support tickets after orders, and a wave of pricing questions after the price update."""
        rng, update_day = self.rng, self.price_update_at.date()
        events = []  # (day, customer, category or None, subject or None)
        for order in orders:
            if order.status == "refunded":
                chance, category = 0.6, "billing"
            else:
                chance, category = (0.1 if self.is_org[order.customer] else 0.07), None
            if rng.random() < chance:
                day = order.at.date() + timedelta(days=int(rng.integers(0, 30)))
                if day <= self.as_of:
                    events.append((day, order.customer, category, None))
        existing = [i for i in range(self.n) if self.first_order_at[i] < self.price_update_at]
        wave = min(len(existing), round(self.n * 0.02))
        for i in rng.choice(existing, size=wave, replace=False).tolist():
            day = min(update_day + timedelta(days=int(rng.integers(0, 30))), self.as_of)
            events.append((day, i, "pricing", "Why did the price go up?"))
        events.sort(key=lambda event: (event[0], event[1]))

        tickets = []
        for number, (day, i, category, subject) in enumerate(events, start=1):
            after_update = day >= update_day
            weights = TICKET_WEIGHTS[after_update]
            category = category or TICKET_CATEGORIES[int(rng.choice(len(weights), p=weights))]
            complaint_share = COMPLAINT_SHARE[category]
            if after_update and category == "pricing":
                complaint_share *= 1.5  # the price rise makes people angry, not just curious
            opened_at = self._moment(day)
            # Median 5 hours to a first answer (a few take days) and 20 more to a resolution.
            response_hours = min(float(rng.lognormal(np.log(5), 1.0)), 120)
            responded_at = opened_at + timedelta(hours=response_hours)
            resolved_at = responded_at + timedelta(hours=float(rng.lognormal(np.log(20), 1.0)))
            status = "resolved"
            if responded_at >= self.end_at:
                responded_at = resolved_at = None
                status = "open"
            elif resolved_at >= self.end_at or rng.random() < 0.03:
                resolved_at = None
                status = "pending" if rng.random() < 0.5 else "open"
            elif resolved_at < self.end_at - timedelta(days=7) and rng.random() < 0.7:
                status = "closed"
            tickets.append(SupportTicket(
                external_id=f"TCK-{number:05d}", customer=self.customers[i], opened_at=opened_at,
                category=category, status=status,
                subject=subject or self._pick(TICKET_SUBJECTS[category]),
                is_complaint=bool(rng.random() < complaint_share),
                first_response_at=responded_at, resolved_at=resolved_at,
            ))
        SupportTicket.objects.bulk_create(tickets, batch_size=BATCH)


class DemoDataInvalid(Exception):
    """The import refused generated orders: a bug in this module, never the user's input."""
