"""Predicted customer value on the business's orders (retention/value/predictions.py).

The published CDNOW sample (tests/data/README.md) read through import_orders and the
Order table must give Fader, Hardie and Lee's (2005) BG/NBD fit and Fader and Hardie's
Gamma-Gamma fit. The hand-built cases check what a customer's history becomes (a
purchase is a day of paid orders, its value the day's total) and what happens when
the models cannot be used: the simple rule of the spec, said so in the stored fit.
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import call_command
from scipy import optimize

from retention.figures import metrics
from retention.value import clv, predictions
from retention.value.models import ClvFit, CustomerPrediction
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

CDNOW = "tests/data/cdnow_sample_orders.csv"
CALIBRATION_END = date(1997, 9, 30)  # the end of week 39: the paper's calibration period


def import_cdnow(tmp_path) -> None:
    """import_orders on the CDNOW sample, each line of the original file one order.

    The file has no order ids, and 21 of its lines repeat an earlier line exactly
    (a customer buying the same value twice on one day); import_orders takes identical
    rows without an order id for one order, so the copy imported here numbers them.
    """
    path = tmp_path / "cdnow.csv"
    with open(CDNOW, newline="") as source, open(path, "w", newline="") as target:
        rows = csv.reader(source)
        out = csv.writer(target)
        out.writerow(["order_id", *next(rows)])
        for number, row in enumerate(rows, 1):
            out.writerow([f"cdnow-{number}", *row])
    call_command("import_orders", str(path), stdout=io.StringIO(), stderr=io.StringIO())


def buy(customer, day: date, amount: str = "100.00", *, status: str = "paid", hour: int = 12):
    return OrderFactory(customer=customer, ordered_at=datetime(day.year, day.month, day.day, hour,
                                                               tzinfo=UTC),
                        amount=Decimal(amount), status=status)


def by_customer(inputs: predictions.Inputs, customer) -> int:
    return int(np.flatnonzero(inputs.customer == customer.pk)[0])


@pytest.fixture
def simple_rule(settings):
    """Hand-built data: no discount, so the simple rule's figures are easy sums."""
    settings.TIME_ZONE = "UTC"
    settings.RETENTION_CLV_MONTHLY_DISCOUNT = 0.0
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    return settings


# The literature ---------------------------------------------------------------------------------


def test_cdnow_sample_gives_the_published_bgnbd_fit(tmp_path):
    """Fader, Hardie and Lee (2005), section 4: r = 0.243, α = 4.414, a = 0.793,
    b = 2.426 and LL = −9582.4 on the 2,357 customers' first 39 weeks."""
    import_cdnow(tmp_path)

    inputs = predictions.read_inputs(CALIBRATION_END)
    models = predictions.fit_models(inputs)

    assert len(inputs) == 2357
    assert models.customers == 2357 and models.repeat_customers == 946
    assert int((inputs.x > 0).sum()) == 946
    fit = models.bgnbd
    assert fit.converged and fit.customers == 2357
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert fit.params[name] == pytest.approx(published, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(-9582.4, rel=0.001)
    assert models.purchases_method == ClvFit.Method.MODEL and not models.reasons
    # The paper's worked example, with the parameters fitted here: x = 2, t_x = 30.43,
    # T = 38.86 is expected to make 1.226 purchases in the 39 weeks after.
    expected = clv.BGNBD.expected_purchases(models.bgnbd_params, 2.0, 30.43, 38.86, 39.0)
    assert float(expected) == pytest.approx(1.226, abs=0.002)


def test_cdnow_sample_gives_the_published_gamma_gamma_fit(tmp_path):
    """Fader and Hardie, "The Gamma-Gamma model of monetary value": p = 6.25,
    q = 3.74, γ = 15.44 on the 946 repeat buyers' mean repeat spend."""
    import_cdnow(tmp_path)

    models = predictions.fit_models(predictions.read_inputs(CALIBRATION_END))

    fit = models.gamma_gamma
    assert fit.converged and fit.customers == 946
    for name, published in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert fit.params[name] == pytest.approx(published, rel=0.01), name
    assert models.spend_method == ClvFit.Method.MODEL


def test_cdnow_predictions_are_stored_for_every_customer_and_stay_in_range(tmp_path):
    import_cdnow(tmp_path)

    record = predictions.fit(CALIBRATION_END, purpose=ClvFit.Purpose.NIGHTLY, store=True)

    assert record.uses_models and record.fallback_reasons == []
    assert record.customers == 2357 and record.repeat_customers == 946
    assert record.bgnbd["converged"] and record.gamma_gamma["converged"]
    stored = CustomerPrediction.objects.filter(as_of=CALIBRATION_END)
    assert stored.count() == 2357 and set(stored.values_list("fit", flat=True)) == {record.pk}
    rows = list(stored.values("frequency", "probability_active", "expected_purchases_12m",
                              "predicted_value_12m", "value_at_risk", "no_purchase_90d"))
    assert all(row["predicted_value_12m"] >= 0 and row["value_at_risk"] >= 0 for row in rows)
    assert all(0 <= row["probability_active"] <= 1 for row in rows)
    assert all(0 <= row["no_purchase_90d"] <= 1 for row in rows)
    assert all(row["expected_purchases_12m"] >= 0 for row in rows)
    # BG/NBD: without a repeat purchase a customer cannot have dropped out yet.
    assert {row["probability_active"] for row in rows if row["frequency"] == 0} == {1.0}
    description = predictions.describe(record)
    assert description["method"] == "model"
    assert description["method_summary"] == "purchases: BG/NBD; spend: Gamma-Gamma"


# A customer's history ---------------------------------------------------------------------------


def test_single_purchase_is_no_repeat_purchase_and_ages_from_its_day(simple_rule):
    customer = CustomerFactory()
    buy(customer, date(2025, 1, 10), "80.00")

    inputs = predictions.read_inputs(date(2025, 3, 31))

    assert list(inputs.customer) == [customer.pk]
    assert inputs.x.tolist() == [0.0] and inputs.t_x.tolist() == [0.0]
    assert inputs.T.tolist() == [pytest.approx(80 / 7)]  # 10 January to 31 March: 80 days
    assert inputs.total.tolist() == [80.0] and inputs.repeat_mean.tolist() == [0.0]


def test_several_orders_on_one_day_are_one_purchase_worth_the_days_total(simple_rule):
    one_day = CustomerFactory()
    for amount in ("100.00", "50.00", "25.00"):
        buy(one_day, date(2025, 2, 1), amount)
    twice = CustomerFactory()
    buy(twice, date(2025, 1, 1), "10.00")
    buy(twice, date(2025, 2, 5), "30.00", hour=9)
    buy(twice, date(2025, 2, 5), "20.00", hour=17)

    inputs = predictions.read_inputs(date(2025, 3, 31))

    i, j = by_customer(inputs, one_day), by_customer(inputs, twice)
    assert inputs.x[i] == 0 and inputs.t_x[i] == 0 and inputs.total[i] == 175.0
    assert inputs.x[j] == 1 and inputs.t_x[j] == pytest.approx(35 / 7)
    # The spend model's input: repeat days only, the first day left out.
    assert inputs.repeat_mean[j] == 50.0 and inputs.total[j] == 60.0


def test_refunded_and_cancelled_orders_count_for_nothing(simple_rule):
    customer = CustomerFactory()
    buy(customer, date(2025, 1, 5), "40.00")
    buy(customer, date(2025, 2, 5), "500.00", status="refunded")
    buy(customer, date(2025, 3, 5), "700.00", status="cancelled")
    never_paid = CustomerFactory()
    buy(never_paid, date(2025, 1, 20), "90.00", status="refunded")

    record = predictions.fit(date(2025, 3, 31), store=True)

    assert record.customers == 1 and record.repeat_customers == 0
    prediction = CustomerPrediction.objects.get(as_of=date(2025, 3, 31))
    assert prediction.customer_id == customer.pk
    assert prediction.frequency == 0 and prediction.recency_weeks == 0
    assert prediction.expected_value_per_purchase == Decimal("40.00")
    assert not CustomerPrediction.objects.filter(customer=never_paid).exists()


def test_orders_after_the_as_of_day_are_not_read(simple_rule):
    customer = CustomerFactory()
    buy(customer, date(2025, 3, 31), "10.00", hour=23)
    buy(customer, date(2025, 4, 1), "99.00", hour=0)

    inputs = predictions.read_inputs(date(2025, 3, 31))

    assert inputs.x.tolist() == [0.0] and inputs.total.tolist() == [10.0]


def test_purchase_days_are_dated_in_the_business_time_zone(settings):
    """22:30 UTC on 31 March is 00:30 on 1 April in Johannesburg: after the as-of day."""
    settings.TIME_ZONE = "Africa/Johannesburg"
    customer = CustomerFactory()
    buy(customer, date(2025, 3, 1), "10.00")
    OrderFactory(customer=customer, ordered_at=datetime(2025, 3, 30, 22, 30, tzinfo=UTC),
                 amount=Decimal("20.00"))  # 31 March, 00:30 local
    OrderFactory(customer=customer, ordered_at=datetime(2025, 3, 31, 22, 30, tzinfo=UTC),
                 amount=Decimal("40.00"))  # 1 April, 00:30 local

    inputs = predictions.read_inputs(date(2025, 3, 31))

    assert inputs.x.tolist() == [1.0] and inputs.total.tolist() == [30.0]
    assert inputs.t_x.tolist() == [pytest.approx(30 / 7)]


# When the models cannot be used -----------------------------------------------------------------


def test_as_of_before_any_purchase_records_the_fallback_and_stores_nothing(simple_rule):
    buy(CustomerFactory(), date(2025, 1, 10))

    record = predictions.fit(date(2024, 12, 31), purpose=ClvFit.Purpose.NIGHTLY, store=True)

    record.refresh_from_db()
    assert record.customers == 0 and record.repeat_customers == 0
    assert record.purchases_method == record.spend_method == ClvFit.Method.FALLBACK
    assert record.fallback_reasons == [
        "too little data to fit: 0 customers and 0 repeat buyers (at least 200 and 50 needed)"]
    assert record.bgnbd == {} and record.gamma_gamma == {}
    assert not CustomerPrediction.objects.exists()
    assert predictions.describe(record)["method"] == "fallback"


def test_thin_data_uses_the_simple_rule_and_says_why(simple_rule):
    """The simple rule: active (probability 1) when the last purchase is within the
    activity window, buying at their rate so far (purchase days a year, counting at
    least one year), each purchase worth their mean purchase-day value."""
    simple_rule.RETENTION_CLV_MIN_CUSTOMERS = 10
    simple_rule.RETENTION_CLV_MIN_REPEAT_BUYERS = 2
    as_of = date(2025, 6, 30)
    regular = CustomerFactory()
    buy(regular, date(2025, 1, 10), "100.00")
    buy(regular, date(2025, 4, 10), "50.00")
    once = CustomerFactory()
    buy(once, date(2025, 5, 1), "80.00")
    lapsed = CustomerFactory()
    buy(lapsed, date(2023, 1, 1), "60.00")
    buy(lapsed, date(2023, 6, 1), "60.00")
    buy(lapsed, date(2024, 6, 1), "60.00")  # 394 days before as_of: outside the window

    record = predictions.fit(as_of, purpose=ClvFit.Purpose.NIGHTLY, store=True)

    assert record.purchases_method == record.spend_method == ClvFit.Method.FALLBACK
    assert record.fallback_reasons == [
        "too little data to fit: 3 customers and 2 repeat buyers (at least 10 and 2 needed)"]
    assert record.bgnbd == {} and record.gamma_gamma == {}
    stored = {p.customer_id: p for p in CustomerPrediction.objects.filter(as_of=as_of)}
    assert set(stored) == {regular.pk, once.pk, lapsed.pk}
    # Two purchase days in under a year: two a year, at 75.00 each.
    assert stored[regular.pk].probability_active == 1
    assert stored[regular.pk].expected_purchases_12m == pytest.approx(2)
    assert stored[regular.pk].expected_value_per_purchase == Decimal("75.00")
    assert stored[regular.pk].predicted_value_12m == Decimal("150.00")
    assert stored[regular.pk].value_at_risk == 0
    assert stored[once.pk].predicted_value_12m == Decimal("80.00")
    # Lapsed: three days in 2.5 years, 1.2 a year if still active; inactive, so all at risk.
    assert stored[lapsed.pk].probability_active == 0
    assert stored[lapsed.pk].predicted_value_12m == 0
    assert stored[lapsed.pk].no_purchase_90d == 1
    years = (as_of - date(2023, 1, 1)).days / 365.25
    assert float(stored[lapsed.pk].value_at_risk) == pytest.approx(60 * 3 / years, abs=0.01)
    assert predictions.describe(record)["method"] == "fallback"


def test_too_few_repeat_buyers_use_the_simple_rule_and_say_so(simple_rule):
    simple_rule.RETENTION_CLV_MIN_CUSTOMERS = 2
    simple_rule.RETENTION_CLV_MIN_REPEAT_BUYERS = 5
    for day in (date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)):
        buy(CustomerFactory(), day)

    record = predictions.fit(date(2025, 6, 30))

    assert record.fallback_reasons == [
        "too little data to fit: 3 customers and 0 repeat buyers (at least 2 and 5 needed)"]
    assert not record.uses_models


@pytest.fixture
def small_book(simple_rule):
    """40 customers drawn from a BG/NBD, as orders of 100.00 then 60.00; thresholds lowered."""
    simple_rule.RETENTION_CLV_MIN_CUSTOMERS = 20
    simple_rule.RETENTION_CLV_MIN_REPEAT_BUYERS = 5
    rng = np.random.default_rng(42)
    x, t_x, _ = clv.simulate_bgnbd((0.8, 4.0, 0.5, 2.5), 40, 30.0, rng)
    start = date(2025, 1, 1)
    for count, last in zip(x.astype(int), t_x):
        customer = CustomerFactory()
        buy(customer, start, "100.00")
        days = sorted(set(np.linspace(1, max(int(last * 7), count), count).astype(int)))
        for offset in days:
            buy(customer, start + timedelta(days=int(offset)), "60.00")
    return start + timedelta(weeks=30)


def test_fit_that_does_not_converge_falls_back_to_the_simple_rule(small_book, monkeypatch):
    """The optimiser stopped after one iteration (as a hard likelihood would stop it)."""
    def one_iteration(*args, options, **kwargs):
        return optimize.minimize(*args, options={**options, "maxiter": 1}, **kwargs)

    monkeypatch.setattr(clv, "optimize", SimpleNamespace(minimize=one_iteration))

    record = predictions.fit(small_book, purpose=ClvFit.Purpose.NIGHTLY, store=True)

    record.refresh_from_db()
    assert record.bgnbd["converged"] is False and record.gamma_gamma["converged"] is False
    assert record.purchases_method == record.spend_method == ClvFit.Method.FALLBACK
    assert [reason.split(":")[0] for reason in record.fallback_reasons] == [
        "BG/NBD did not converge", "Gamma-Gamma did not converge"]
    description = predictions.describe(record)
    assert description["method"] == "fallback"
    assert description["method_summary"].startswith("purchases: simple rule")
    # Every stored prediction is the simple rule's: active within the window (all are).
    stored = CustomerPrediction.objects.filter(as_of=small_book, fit=record)
    assert stored.count() == record.customers == 40
    assert set(stored.values_list("probability_active", flat=True)) == {1.0}


def test_same_spend_on_every_purchase_falls_back_for_spend_only(simple_rule):
    """One course at one price: Gamma-Gamma has no spread to fit, so it does not
    converge; the purchases model still does."""
    simple_rule.RETENTION_CLV_MIN_CUSTOMERS = 20
    simple_rule.RETENTION_CLV_MIN_REPEAT_BUYERS = 5
    rng = np.random.default_rng(3)
    start = date(2025, 1, 1)
    x, t_x, _ = clv.simulate_bgnbd((0.8, 4.0, 0.5, 2.5), 60, 30.0, rng)
    for count, last in zip(x.astype(int), t_x):
        customer = CustomerFactory()
        for offset in {0, *np.linspace(1, max(int(last * 7), count), count).astype(int)}:
            buy(customer, start + timedelta(days=int(offset)), "250.00")

    record = predictions.fit(start + timedelta(weeks=30), store=True)

    assert record.purchases_method == ClvFit.Method.MODEL
    assert record.spend_method == ClvFit.Method.FALLBACK
    assert record.gamma_gamma["converged"] is False
    assert any(reason.startswith("Gamma-Gamma did not converge")
               for reason in record.fallback_reasons)
    values = set(CustomerPrediction.objects.values_list("expected_value_per_purchase", flat=True))
    assert values == {Decimal("250.00")}


# Storing ----------------------------------------------------------------------------------------


def test_storing_twice_for_one_day_replaces_the_predictions(simple_rule):
    first_customer, second_customer = CustomerFactory(), CustomerFactory()
    buy(first_customer, date(2025, 1, 10), "100.00")
    buy(second_customer, date(2025, 2, 10), "40.00")
    earlier = predictions.fit(date(2025, 5, 31), purpose=ClvFit.Purpose.NIGHTLY, store=True)
    first = predictions.fit(date(2025, 6, 30), purpose=ClvFit.Purpose.NIGHTLY, store=True)
    buy(first_customer, date(2025, 6, 20), "300.00")

    second = predictions.fit(date(2025, 6, 30), purpose=ClvFit.Purpose.NIGHTLY, store=True)

    stored = CustomerPrediction.objects.filter(as_of=date(2025, 6, 30))
    assert stored.count() == 2
    assert set(stored.values_list("fit", flat=True)) == {second.pk}
    assert stored.get(customer=first_customer).expected_value_per_purchase == Decimal("200.00")
    assert not CustomerPrediction.objects.filter(fit=first).exists()
    # Another day's predictions are left alone.
    assert CustomerPrediction.objects.filter(as_of=date(2025, 5, 31), fit=earlier).count() == 2
    assert predictions.latest_fit() == second


def test_fit_without_store_records_the_fit_but_no_predictions(simple_rule):
    buy(CustomerFactory(), date(2025, 1, 10))

    record = predictions.fit(date(2025, 6, 30))

    assert record.purpose == ClvFit.Purpose.MANUAL and record.customers == 1
    assert not CustomerPrediction.objects.exists()


# The metric -------------------------------------------------------------------------------------


def test_predicted_clv_metric_is_the_mean_stored_value_of_customers_active_at_the_end(
        simple_rule):
    """Q2 2025 with a 365-day window: A and B bought within it, C last on 2024-06-01.
    Simple rule, no discount: A 2 days a year × 75.00 = 150.00, B 1 × 80.00 = 80.00,
    C inactive (0.00). The metric averages A and B only: 115.00."""
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    buy(a, date(2025, 1, 10), "100.00")
    buy(a, date(2025, 4, 10), "50.00")
    buy(b, date(2025, 5, 1), "80.00")
    buy(c, date(2023, 1, 1), "60.00")
    buy(c, date(2024, 6, 1), "60.00")
    predictions.fit(date(2025, 6, 30), purpose=ClvFit.Purpose.NIGHTLY, store=True)
    predictions.fit(date(2025, 7, 31), purpose=ClvFit.Purpose.NIGHTLY, store=True)  # after Q2

    result = metrics.compute(date(2025, 4, 1), date(2025, 6, 30))

    stored = dict(CustomerPrediction.objects.filter(as_of=date(2025, 6, 30))
                  .values_list("customer", "predicted_value_12m"))
    assert stored == {a.pk: Decimal("150.00"), b.pk: Decimal("80.00"), c.pk: Decimal("0.00")}
    assert result["predicted_clv_12m"] == Decimal("115.00")
    assert result["period"]["predictions"] == {
        "as_of": "2025-06-30", "method": "fallback",
        "method_summary": "purchases: simple rule (purchase rate so far, active within the "
                          "window); spend: simple rule (the customer's mean purchase value)"}


def test_predicted_clv_metric_is_empty_without_stored_predictions(simple_rule):
    buy(CustomerFactory(), date(2025, 5, 1), "80.00")
    predictions.fit(date(2025, 6, 30))  # fit_clv without --store: nothing for the metric

    result = metrics.compute(date(2025, 4, 1), date(2025, 6, 30))

    assert result["predicted_clv_12m"] is None
    assert result["period"]["predictions"] is None
