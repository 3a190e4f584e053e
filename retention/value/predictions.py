"""Predicted customer value: the models of retention/value/clv.py fitted on the business's orders.

`fit(as_of)` reads every customer's purchase history up to `as_of` in one set-based
query, fits BG/NBD (purchases) and Gamma-Gamma (spend per purchase), scores every
customer with vector arithmetic and, for the nightly run, stores one
CustomerPrediction per customer. The inputs follow shared/spec/metrics.md: a
purchase is a day with counting (paid) orders, dated in the business time zone,
its value the day's total; time is in weeks; the first day's orders are left out
of the spend model, and so are customers without a repeat purchase.

The simple rule. When the data are too thin (fewer than RETENTION_CLV_MIN_CUSTOMERS
customers or RETENTION_CLV_MIN_REPEAT_BUYERS repeat buyers) or a fit does not
converge, the model concerned is replaced, and the fit records which and why:

- purchases: a customer whose last purchase is within the activity window
  (RETENTION_ACTIVITY_WINDOW_DAYS) counts as active (probability 1, else 0) and is
  expected to keep buying at their rate so far: purchase days per year since their
  first purchase, counting at least one year;
- spend: the customer's mean purchase-day value, all days included.

Predicted 12-month value: month k's expected purchases times the expected value per
purchase, divided by (1 + RETENTION_CLV_MONTHLY_DISCOUNT)^k, summed over twelve
months. Value at risk: what the next 12 months would bring if the customer is still
active, times the probability that they are not.

A holdout fit (`holdout(as_of, weeks)`) fits on the orders up to `weeks` weeks before
`as_of` and compares its predictions with the purchases of the following `weeks` weeks,
in total and by the number of repeat purchases in the calibration part (as Fader,
Hardie and Lee's figure 4 does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate

from retention.periods import is_month_end, last_month_end, midnight
from retention.sales import changes
from retention.sales.models import Order
from retention.value import clv
from retention.value.models import ClvFit, CustomerPrediction

NO_PURCHASE_DAYS = 90  # the at-risk score: no purchase in the next 90 days
HOLDOUT_GROUPS = 7  # the holdout table: 0, 1, …, 6 and "7 or more" calibration purchases
MODEL, FALLBACK = ClvFit.Method.MODEL, ClvFit.Method.FALLBACK


class HoldoutError(ValueError):
    """A holdout split that cannot be made (no data after it, or none before)."""


@dataclass
class Inputs:
    """Every customer's purchase days up to `as_of`, as arrays in customer order."""

    as_of: date
    customer: np.ndarray  # ids
    days: np.ndarray  # purchase days
    first: np.ndarray  # datetime64[D]
    last: np.ndarray
    total: np.ndarray  # value of all purchase days
    repeat_total: np.ndarray  # value of the days after the first

    def __len__(self) -> int:
        return len(self.customer)

    @property
    def x(self) -> np.ndarray:
        return (self.days - 1).astype(float)

    @property
    def t_x(self) -> np.ndarray:
        return (self.last - self.first).astype(float) / 7

    @property
    def T(self) -> np.ndarray:
        return (np.datetime64(self.as_of, "D") - self.first).astype(float) / 7

    @property
    def days_since_last(self) -> np.ndarray:
        return (np.datetime64(self.as_of, "D") - self.last).astype(int)

    @property
    def repeat_mean(self) -> np.ndarray:
        """Mean value of the repeat purchase days (0 for customers without one)."""
        x = self.x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, self.repeat_total / np.maximum(x, 1), 0.0)


def _purchase_days(start: date | None, end: date, zone: ZoneInfo):
    """Counting orders dated in [start, end], one row per customer and day with its total."""
    orders = Order.objects.counting().filter(ordered_at__lt=midnight(end + timedelta(days=1), zone))
    if start is not None:
        orders = orders.filter(ordered_at__gte=midnight(start, zone))
    return (orders.order_by().annotate(day=TruncDate("ordered_at", tzinfo=zone))
            .values("customer_id", "day").annotate(value=Sum("amount")))


def read_inputs(as_of: date) -> Inputs:
    """One query: per customer, purchase days, first and last day, and their values."""
    zone = ZoneInfo(settings.TIME_ZONE)
    inner, params = _purchase_days(None, as_of, zone).query.sql_with_params()
    sql = f"""
        SELECT customer_id, COUNT(*), MIN(day), MAX(day),
               CAST(SUM(value) AS DOUBLE PRECISION),
               CAST(SUM(CASE WHEN day > first_day THEN value ELSE 0 END) AS DOUBLE PRECISION)
        FROM (SELECT d.*, MIN(d.day) OVER (PARTITION BY d.customer_id) AS first_day
              FROM ({inner}) d) days
        GROUP BY customer_id ORDER BY customer_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        empty = np.array([], dtype=float)
        day = np.array([], dtype="datetime64[D]")
        return Inputs(as_of, np.array([], dtype=np.int64), empty, day, day, empty, empty)
    n = len(rows)

    def column(index: int, dtype) -> np.ndarray:
        return np.fromiter((row[index] for row in rows), dtype=dtype, count=n)

    return Inputs(
        as_of=as_of,
        customer=column(0, np.int64),
        days=column(1, float),
        first=_dates((row[2] for row in rows), n),
        last=_dates((row[3] for row in rows), n),
        total=column(4, float),
        repeat_total=column(5, float),
    )


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _dates(values, n: int) -> np.ndarray:
    """Dates (or SQLite's ISO strings) as datetime64[D], through their ordinals: NumPy's
    own conversion of a million date objects took 3.6 s, this takes 0.2 s."""
    ordinals = np.fromiter(
        ((value if isinstance(value, date) else date.fromisoformat(value)).toordinal()
         for value in values), dtype=np.int64, count=n)
    return (ordinals - EPOCH_ORDINAL).astype("datetime64[D]")


def purchase_days_between(start: date, end: date) -> dict[int, int]:
    """Customer id -> purchase days in [start, end] (the holdout's actual purchases)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    inner, params = _purchase_days(start, end, zone).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT customer_id, COUNT(*) FROM ({inner}) d GROUP BY customer_id",
                       params)
        return dict(cursor.fetchall())


# Fitting ----------------------------------------------------------------------------------------


@dataclass
class Models:
    """The outcome of fitting: each model's fit (or None) and what the predictions use."""

    customers: int
    repeat_customers: int
    bgnbd: clv.Fit | None = None
    gamma_gamma: clv.Fit | None = None
    purchases_method: str = FALLBACK
    spend_method: str = FALLBACK
    reasons: list[str] = field(default_factory=list)

    @property
    def bgnbd_params(self) -> tuple[float, float, float, float]:
        p = self.bgnbd.params
        return p["r"], p["alpha"], p["a"], p["b"]

    @property
    def gamma_gamma_params(self) -> tuple[float, float, float]:
        p = self.gamma_gamma.params
        return p["p"], p["q"], p["gamma"]


def fit_models(inputs: Inputs, *, min_customers: int | None = None,
               min_repeat_buyers: int | None = None) -> Models:
    """Fit both models where the data allow it; record why not where they do not."""
    min_customers = min_customers or settings.RETENTION_CLV_MIN_CUSTOMERS
    min_repeat = min_repeat_buyers or settings.RETENTION_CLV_MIN_REPEAT_BUYERS
    x = inputs.x
    repeat = x > 0
    models = Models(customers=len(inputs), repeat_customers=int(repeat.sum()))
    if models.customers < min_customers or models.repeat_customers < min_repeat:
        models.reasons.append(
            f"too little data to fit: {models.customers} customers and "
            f"{models.repeat_customers} repeat buyers (at least {min_customers} and "
            f"{min_repeat} needed)")
        return models
    models.bgnbd = _try_fit("BG/NBD", lambda: clv.BGNBD(x, inputs.t_x, inputs.T), models)
    if models.bgnbd is not None and models.bgnbd.converged:
        models.purchases_method = MODEL
    # Spend: repeat buyers with a positive mean (free repeat purchases tell nothing of spend).
    spend = repeat & (inputs.repeat_mean > 0)
    if spend.sum() < min_repeat:
        models.reasons.append(
            f"too few repeat buyers with paid repeat purchases for Gamma-Gamma: {int(spend.sum())}"
            f" (at least {min_repeat} needed)")
        return models
    models.gamma_gamma = _try_fit(
        "Gamma-Gamma", lambda: clv.GammaGamma(x[spend], inputs.repeat_mean[spend]), models)
    if models.gamma_gamma is not None and models.gamma_gamma.converged:
        models.spend_method = MODEL
    return models


def _try_fit(name: str, make, models: Models) -> clv.Fit | None:
    """Fit the model `make()` builds; record in `models` why it cannot be used, if so."""
    try:
        fit = make().fit()
    except clv.FitFailed as error:
        models.reasons.append(f"{name} could not be fitted: {error}")
        return None
    if not fit.converged:
        models.reasons.append(f"{name} did not converge: {fit.message}")
    return fit


# Scoring ----------------------------------------------------------------------------------------


@dataclass
class Scores:
    probability_active: np.ndarray
    expected_purchases_12m: np.ndarray
    value_per_purchase: np.ndarray
    predicted_value_12m: np.ndarray
    value_at_risk: np.ndarray
    no_purchase_90d: np.ndarray


def score(models: Models, inputs: Inputs, *, monthly_discount: float | None = None) -> Scores:
    """Every customer's predictions, as arrays aligned with `inputs`."""
    d = settings.RETENTION_CLV_MONTHLY_DISCOUNT if monthly_discount is None else monthly_discount
    x, t_x, T = inputs.x, inputs.t_x, inputs.T
    if models.spend_method == MODEL:
        spend = clv.GammaGamma.expected_value(models.gamma_gamma_params, x, inputs.repeat_mean)
    else:
        spend = inputs.total / np.maximum(inputs.days, 1)
    discount = (1 + d) ** -np.arange(1, 13)
    if models.purchases_method == MODEL:
        params = models.bgnbd_params
        ahead = clv.purchases_ahead(params, x, t_x, T, monthly_discount=d)
        alive, expected = ahead.alive, ahead.expected
        discounted, if_active = ahead.discounted, ahead.discounted_if_active
        quiet = clv.BGNBD.probability_no_purchase(params, x, t_x, T, NO_PURCHASE_DAYS / 7)
    else:
        window = settings.RETENTION_ACTIVITY_WINDOW_DAYS
        alive = (inputs.days_since_last < window).astype(float)
        rate = inputs.days / np.maximum(T / clv.WEEKS_PER_YEAR, 1.0)  # purchase days a year
        if_active = rate / 12 * discount.sum()
        expected = rate * alive
        discounted = if_active * alive
        # Poisson at the customer's own rate, if active: P(no purchase in 90 days).
        quiet = 1 - alive + alive * np.exp(-rate * NO_PURCHASE_DAYS / 365.25)
    return Scores(
        probability_active=alive,
        expected_purchases_12m=expected,
        value_per_purchase=spend,
        predicted_value_12m=discounted * spend,
        value_at_risk=if_active * spend * (1 - alive),
        no_purchase_90d=quiet,
    )


# Runs -------------------------------------------------------------------------------------------


def _record(models: Models, as_of: date, purpose: str, discount: float, **extra) -> ClvFit:
    return ClvFit.objects.create(
        as_of=as_of, purpose=purpose, customers=models.customers,
        repeat_customers=models.repeat_customers,
        bgnbd=_clean(models.bgnbd.as_dict()) if models.bgnbd else {},
        gamma_gamma=_clean(models.gamma_gamma.as_dict()) if models.gamma_gamma else {},
        purchases_method=models.purchases_method, spend_method=models.spend_method,
        fallback_reasons=models.reasons, monthly_discount=Decimal(str(discount)), **extra)


def _clean(data: dict) -> dict:
    """JSON has no NaN: a log-likelihood that could not be computed is null."""
    return {key: (None if isinstance(value, float) and not np.isfinite(value) else value)
            for key, value in data.items()}


def fit(as_of: date, *, purpose: str = ClvFit.Purpose.MANUAL, store: bool = False,
        log_change: bool = True) -> ClvFit:
    """Fit on the orders dated ≤ `as_of`; with `store`, replace that day's predictions.

    Stored predictions move `predicted_clv_12m` of every period ending on or after
    `as_of`, so storing notes the day in the change log (retention.sales.changes) and stored
    figures of those periods are computed again. The nightly run, which computes its
    snapshots after its predictions, passes `log_change=False`.
    """
    began = time.perf_counter()
    discount = settings.RETENTION_CLV_MONTHLY_DISCOUNT
    inputs = read_inputs(as_of)
    models = fit_models(inputs)
    with transaction.atomic():
        record = _record(models, as_of, purpose, discount)
        if store:
            CustomerPrediction.objects.filter(as_of=as_of).delete()
            if log_change:
                changes.record(as_of, source="predictions")
            if len(inputs):
                _store(record, inputs, score(models, inputs, monthly_discount=discount))
        record.seconds = round(time.perf_counter() - began, 3)
        record.save(update_fields=["seconds"])
    return record


def _store(record: ClvFit, inputs: Inputs, scores: Scores) -> None:
    """One row per customer: COPY on PostgreSQL, batched inserts elsewhere."""
    columns = ("fit_id", "as_of", "customer_id", "frequency", "recency_weeks", "age_weeks",
               "probability_active", "expected_purchases_12m", "expected_value_per_purchase",
               "predicted_value_12m", "value_at_risk", "no_purchase_90d")
    n = len(inputs)
    money = lambda values: np.round(np.nan_to_num(values), 2)  # noqa: E731
    arrays = [np.full(n, record.pk), np.full(n, record.as_of.isoformat(), dtype=object),
              inputs.customer, inputs.x.astype(np.int64), np.round(inputs.t_x, 6),
              np.round(inputs.T, 6), np.clip(scores.probability_active, 0, 1),
              np.nan_to_num(scores.expected_purchases_12m),
              money(scores.value_per_purchase), money(scores.predicted_value_12m),
              money(scores.value_at_risk), np.clip(scores.no_purchase_90d, 0, 1)]
    rows = zip(*(array.tolist() for array in arrays))
    table = CustomerPrediction._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            batch: list = []
            for row in rows:
                batch.append(row)
                if len(batch) == 5000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)


def latest_fit(on_or_before: date | None = None) -> ClvFit | None:
    """The newest fit whose predictions are stored (dated ≤ the day, if given)."""
    fits = ClvFit.objects.filter(purpose=ClvFit.Purpose.NIGHTLY)
    if on_or_before is not None:
        fits = fits.filter(as_of__lte=on_or_before)
    return fits.order_by("-as_of", "-created_at").first()


def prune(*, keep_days: int, today: date) -> int:
    """Delete nightly predictions older than `keep_days` except month-end ones (the
    metric `predicted_clv_12m` of past periods reads those); return the dates deleted."""
    cutoff = today - timedelta(days=keep_days)
    old = sorted({day for day in ClvFit.objects.filter(
        purpose=ClvFit.Purpose.NIGHTLY, as_of__lt=cutoff).values_list("as_of", flat=True)
        if not is_month_end(day)})
    for day in old:
        with transaction.atomic():
            CustomerPrediction.objects.filter(as_of=day).delete()
            ClvFit.objects.filter(purpose=ClvFit.Purpose.NIGHTLY, as_of=day).delete()
    return len(old)


# Holdout validation -----------------------------------------------------------------------------


def holdout(as_of: date, weeks: int) -> ClvFit:
    """Fit on orders up to `weeks` weeks before `as_of`; compare with the weeks after.

    Customers are those with a purchase in the calibration part; their purchase days in
    the holdout part are the actual purchases, the BG/NBD expectation over the same
    span the predicted ones.
    """
    if weeks < 1:
        raise HoldoutError("the holdout needs at least one week")
    began = time.perf_counter()
    split = as_of - timedelta(weeks=weeks)
    inputs = read_inputs(split)
    if not len(inputs):
        raise HoldoutError(f"no paid orders on or before {split}, where the calibration ends")
    models = fit_models(inputs)
    actual = aligned(inputs.customer, purchase_days_between(split + timedelta(days=1), as_of))
    x, t_x, T = inputs.x, inputs.t_x, inputs.T
    if models.purchases_method == MODEL:
        predicted = clv.BGNBD.expected_purchases(models.bgnbd_params, x, t_x, T, weeks)
    else:
        window = settings.RETENTION_ACTIVITY_WINDOW_DAYS
        active = inputs.days_since_last < window
        predicted = active * inputs.days / np.maximum(T / clv.WEEKS_PER_YEAR, 1.0) * weeks / \
            clv.WEEKS_PER_YEAR
    comparison = _comparison(x, predicted, actual)
    comparison.update(calibration_end=split.isoformat(), holdout_start=(split + timedelta(
        days=1)).isoformat(), holdout_end=as_of.isoformat(),
        holdout_customers_bought=int((actual > 0).sum()))
    discount = settings.RETENTION_CLV_MONTHLY_DISCOUNT
    record = _record(models, split, ClvFit.Purpose.HOLDOUT, discount, holdout_weeks=weeks,
                     holdout=comparison)
    record.seconds = round(time.perf_counter() - began, 3)
    record.save(update_fields=["seconds"])
    return record


def aligned(customers: np.ndarray, counts: dict[int, int]) -> np.ndarray:
    """`counts` as an array in the order of `customers` (sorted ids); 0 where absent."""
    out = np.zeros(len(customers))
    if counts and len(customers):
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=float, count=len(counts))
        at = np.minimum(np.searchsorted(customers, ids), len(customers) - 1)
        found = customers[at] == ids
        out[at[found]] = values[found]
    return out


def _comparison(x: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> dict:
    groups = np.minimum(x, HOLDOUT_GROUPS).astype(int)
    size = np.bincount(groups, minlength=HOLDOUT_GROUPS + 1)
    pred = np.bincount(groups, weights=predicted, minlength=HOLDOUT_GROUPS + 1)
    act = np.bincount(groups, weights=actual, minlength=HOLDOUT_GROUPS + 1)
    rows = []
    for k in range(HOLDOUT_GROUPS + 1):
        if not size[k]:
            continue
        rows.append({
            "calibration_purchases": f"{k}+" if k == HOLDOUT_GROUPS else str(k),
            "customers": int(size[k]),
            "predicted_mean": round(float(pred[k] / size[k]), 4),
            "actual_mean": round(float(act[k] / size[k]), 4),
        })
    total_predicted, total_actual = float(predicted.sum()), float(actual.sum())
    return {
        "customers": len(x),
        "predicted_purchases": round(total_predicted, 2),
        "actual_purchases": int(total_actual),
        "error_percent": (round((total_predicted - total_actual) / total_actual * 100, 2)
                          if total_actual else None),
        "mean_absolute_error": round(float(np.abs(predicted - actual).mean()), 4),
        "by_calibration_purchases": rows,
    }


def stored_holdout(today: date) -> ClvFit | None:
    """The holdout validation the page shows: RETENTION_CLV_HOLDOUT_WEEKS weeks ending at
    the last month-end on or before `today`, computed once (None when there is too little
    history to split)."""
    weeks = settings.RETENTION_CLV_HOLDOUT_WEEKS
    end = last_month_end(today)
    split = end - timedelta(weeks=weeks)
    found = ClvFit.objects.filter(purpose=ClvFit.Purpose.HOLDOUT, as_of=split,
                                  holdout_weeks=weeks).first()
    if found is not None:
        return found
    try:
        return holdout(end, weeks)
    except HoldoutError:
        return None


def latest_holdout() -> ClvFit | None:
    return ClvFit.objects.filter(purpose=ClvFit.Purpose.HOLDOUT).order_by("-created_at").first()


def describe(record: ClvFit | None) -> dict:
    """The fit as the API, fit_clv --json and the pages report it."""
    if record is None:
        return {"method": "none", "note": "no predictions stored yet (run_nightly makes them)"}
    return {
        "as_of": record.as_of.isoformat(),
        "customers": record.customers,
        "repeat_customers": record.repeat_customers,
        "method": "model" if record.uses_models else "fallback",
        "purchases_method": str(record.purchases_method),
        "spend_method": str(record.spend_method),
        "method_summary": record.method_summary(),
        "fallback_reasons": record.fallback_reasons,
        "monthly_discount": float(record.monthly_discount),
        "bgnbd": record.bgnbd or None,
        "gamma_gamma": record.gamma_gamma or None,
    }
