"""The read-only API of the predictions and the at-risk list (retention/api/predictions.py)."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import requests
import schemathesis
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db.models import Q
from rest_framework.test import APIClient

from retention.sales.models import Customer
from retention.value import atrisk, predictions
from retention.value.models import AtRisk, ClvFit, CustomerPrediction
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

AS_OF = date(2025, 6, 30)
NIGHTLY = ClvFit.Purpose.NIGHTLY
PREDICTIONS, FIT, AT_RISK, BACKTEST = (
    "/api/v1/predictions/", "/api/v1/predictions/fit/", "/api/v1/at-risk/",
    "/api/v1/at-risk/backtest/",
)


def customer_prediction_url(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/prediction/"


# Every endpoint, with the model whose view permission a staff user needs for it.
ENDPOINTS = [
    (PREDICTIONS, "view_customerprediction"),
    (customer_prediction_url("C-1"), "view_customerprediction"),
    (FIT, "view_clvfit"),
    (AT_RISK, "view_atrisk"),
    (BACKTEST, "view_atrisk"),
]


def buyer(customer_id: str, *days_before: int, amount: str = "100.00"):
    """A customer with a paid order on each of the given days before AS_OF."""
    customer = CustomerFactory(external_id=customer_id)
    for days in days_before:
        OrderFactory(customer=customer, amount=Decimal(amount), ordered_at=datetime.combine(
            AS_OF - timedelta(days=days), time(12), tzinfo=UTC))
    return customer


def nightly_fit(as_of: date = AS_OF, *, model: bool = True) -> ClvFit:
    """A stored nightly fit that used both models, or the simple rule for both."""
    method = ClvFit.Method.MODEL if model else ClvFit.Method.FALLBACK
    return ClvFit.objects.create(
        as_of=as_of, purpose=NIGHTLY, customers=500, repeat_customers=120,
        bgnbd={"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43, "converged": model},
        gamma_gamma={"p": 6.25, "q": 3.74, "gamma": 15.44, "converged": model},
        purchases_method=method, spend_method=method,
        fallback_reasons=[] if model else ["BG/NBD did not converge: ABNORMAL"],
        monthly_discount=Decimal("0.0100"),
    )


def prediction(fit: ClvFit, customer_id: str, **values) -> CustomerPrediction:
    """A customer's stored prediction of the fit's day; pass the values a test asserts on."""
    row = {"frequency": 2, "recency_weeks": 20.0, "age_weeks": 40.0, "probability_active": 0.9,
           "expected_purchases_12m": 2.0, "expected_value_per_purchase": Decimal("100.00"),
           "predicted_value_12m": Decimal("180.00"), "value_at_risk": Decimal("20.00"),
           "no_purchase_90d": 0.4, **values}
    customer = CustomerFactory(external_id=customer_id)
    return CustomerPrediction.objects.create(fit=fit, as_of=fit.as_of, customer=customer, **row)


def at_risk(customer_id: str, as_of: date = AS_OF, **values) -> AtRisk:
    """A customer's stored at-risk row; pass the reason columns and values a test asserts on."""
    row = {"score": 0.5, "value_at_risk": Decimal("50.00"),
           "predicted_value_12m": Decimal("200.00"), "probability_active": 0.8,
           "days_since_last": 60, "reason_count": 1, **values}
    customer = CustomerFactory(external_id=customer_id, name=f"Name of {customer_id}")
    return AtRisk.objects.create(as_of=as_of, customer=customer, **row)


def customers_of(page: dict) -> list[str]:
    return [row["customer_id"] for row in page["results"]]


# ---------------------------------------------------------------------------------------------
# Who may read


@pytest.mark.parametrize(("url", "_permission"), ENDPOINTS)
def test_anonymous_is_refused(anonymous_client, url, _permission):
    r = anonymous_client.get(url)

    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("url", "permission"), ENDPOINTS)
def test_staff_need_the_view_permission_of_what_they_read(django_user_model, url, permission):
    """Staff without permissions are refused; with the model's view permission they read."""
    clerk = django_user_model.objects.create_user("clerk", password=None, is_staff=True)
    client = APIClient()
    client.force_login(clerk)
    CustomerFactory(external_id="C-1")

    refused = client.get(url)
    clerk.user_permissions.add(Permission.objects.get(codename=permission))
    clerk = django_user_model.objects.get(pk=clerk.pk)  # drop the cached permissions
    client.force_login(clerk)
    allowed = client.get(url)

    assert refused.status_code == 403
    # The customer has no prediction yet: a 404 that says so, not a refusal.
    assert allowed.status_code == (404 if "/customers/" in url else 200)


@pytest.mark.parametrize(("url", "_permission"), ENDPOINTS)
def test_a_manager_may_read_them_all(django_user_model, settings, tmp_path, url, _permission):
    settings.VAR_DIR = tmp_path
    call_command("create_manager", stdout=StringIO())
    client = APIClient()
    client.force_login(django_user_model.objects.get(username="manager"))
    prediction(nightly_fit(), "C-1")

    assert client.get(url).status_code == 200


def test_the_api_root_lists_the_predictions_and_the_at_risk_list(api_client):
    root = api_client.get("/api/v1/").json()

    assert root["predictions"].endswith("/api/v1/predictions/")
    assert root["at-risk"].endswith("/api/v1/at-risk/")


# ---------------------------------------------------------------------------------------------
# Predictions


def test_simple_rule_predictions_say_so_with_the_reasons(api_client, settings):
    """Too few customers for the models: every answer says the simple rule was used, and why."""
    settings.RETENTION_CLV_MIN_CUSTOMERS, settings.RETENTION_CLV_MIN_REPEAT_BUYERS = 200, 50
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    buyer("C-1", 200, 100, 10)
    buyer("C-2", 400)
    predictions.fit(AS_OF, purpose=NIGHTLY, store=True)

    listed = api_client.get(PREDICTIONS)
    one = api_client.get(customer_prediction_url("C-2"))

    assert listed.status_code == 200 and one.status_code == 200
    page = listed.json()
    assert list(page) == ["count", "next", "previous", "fit", "results"]
    assert page["count"] == 2
    for fit in (page["fit"], one.json()["fit"]):
        assert fit["method"] == "fallback"
        assert fit["as_of"] == "2025-06-30"
        assert fit["fallback_reasons"] == [(
            "too little data to fit: 2 customers and 1 repeat buyers (at least 200 and 50 "
            "needed)")]
        assert fit["method_summary"].startswith("purchases: simple rule")
    active, lapsed = page["results"]  # highest predicted value first
    assert active == {
        "customer_id": "C-1", "as_of": "2025-06-30", "probability_active": 1.0,
        "expected_purchases_12m": 3.0, "expected_value_per_purchase": "100.00",
        # 3 a year at 100 each, discounted 1 % a month: 3/12 × Σ 1.01^-k (k = 1..12) × 100
        "predicted_value_12m": "281.38", "value_at_risk": "0.00",
        "no_purchase_90d": pytest.approx(0.47749, abs=1e-5),  # exp(-3 × 90 / 365.25)
        "frequency": 2,
        "recency_weeks": pytest.approx(190 / 7, abs=1e-5),
        "age_weeks": pytest.approx(200 / 7, abs=1e-5),
    }
    # Not bought within the activity window: counted as gone, all its value at risk.
    assert (lapsed["customer_id"], lapsed["probability_active"]) == ("C-2", 0.0)
    assert lapsed["predicted_value_12m"] == "0.00"
    # 365.25/400 purchases a year (one in 400 days), its 12 months' value all at risk
    assert lapsed["value_at_risk"] == "85.64"
    assert one.json()["customer_id"] == "C-2"
    assert one.json()["value_at_risk"] == lapsed["value_at_risk"]


def test_model_predictions_say_the_models_made_them(api_client):
    prediction(nightly_fit(model=True), "C-1")

    fit = api_client.get(PREDICTIONS).json()["fit"]

    assert fit["method"] == "model"
    assert fit["fallback_reasons"] == []
    assert fit["method_summary"] == "purchases: BG/NBD; spend: Gamma-Gamma"
    assert fit["bgnbd"]["r"] == 0.24 and fit["gamma_gamma"]["p"] == 6.25


def test_without_as_of_the_latest_nightly_predictions_are_listed(api_client):
    prediction(nightly_fit(date(2025, 5, 31)), "C-old")
    prediction(nightly_fit(AS_OF), "C-new")
    # A fit_clv run afterwards stores nothing and does not count.
    ClvFit.objects.create(as_of=date(2025, 7, 5), purpose=ClvFit.Purpose.MANUAL, customers=1,
                          repeat_customers=0, purchases_method="fallback",
                          spend_method="fallback", monthly_discount=Decimal("0.01"))

    page = api_client.get(PREDICTIONS).json()

    assert customers_of(page) == ["C-new"]
    assert page["fit"]["as_of"] == "2025-06-30"


def test_as_of_lists_that_days_predictions_with_their_fit(api_client):
    earlier = nightly_fit(date(2025, 5, 31), model=False)
    prediction(earlier, "C-old")
    prediction(nightly_fit(AS_OF), "C-new")

    page = api_client.get(PREDICTIONS, {"as_of": "2025-05-31"}).json()

    assert customers_of(page) == ["C-old"]
    assert page["fit"]["as_of"] == "2025-05-31"
    assert page["fit"]["method"] == "fallback"


@pytest.mark.parametrize("url", [PREDICTIONS, AT_RISK])
def test_a_day_without_predictions_is_a_400_naming_the_nearest_earlier_day(api_client, url):
    nightly_fit(date(2025, 5, 31))

    between = api_client.get(url, {"as_of": "2025-06-15"})
    before = api_client.get(url, {"as_of": "2025-01-01"})

    assert between.status_code == 400
    assert between.json() == {"as_of": [(
        "Nothing is stored for 2025-06-15: no predictions were made for that day. The nearest "
        "earlier day with them is 2025-05-31.")]}
    assert before.status_code == 400
    assert before.json() == {"as_of": [
        "Nothing is stored for 2025-01-01: no predictions were made on or before it."]}


@pytest.mark.parametrize("url", [PREDICTIONS, AT_RISK])
def test_a_bad_as_of_is_a_400_saying_how_to_write_it(api_client, url):
    r = api_client.get(url, {"as_of": "30/06/2025"})

    assert r.status_code == 400
    assert r.json() == {"as_of": [
        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}


@pytest.mark.parametrize("url", [PREDICTIONS, AT_RISK])
def test_before_any_nightly_run_the_lists_are_empty_and_say_why(api_client, url):
    page = api_client.get(url).json()

    assert page["count"] == 0 and page["results"] == []
    assert page["fit"] == {"method": "none",
                           "note": "no predictions stored yet (run_nightly makes them)"}


def test_predictions_filter_by_customer(api_client):
    fit = nightly_fit()
    prediction(fit, "C-1")
    prediction(fit, "C-2")

    assert customers_of(api_client.get(PREDICTIONS, {"customer_id": "C-2"}).json()) == ["C-2"]
    assert customers_of(api_client.get(PREDICTIONS, {"customer_id": "C-9"}).json()) == []


def test_predictions_sort_by_the_key_asked_for(api_client):
    fit = nightly_fit()
    prediction(fit, "C-1", predicted_value_12m=Decimal("300.00"), value_at_risk=Decimal("5.00"),
               probability_active=0.9, expected_purchases_12m=1.0)
    prediction(fit, "C-2", predicted_value_12m=Decimal("100.00"), value_at_risk=Decimal("80.00"),
               probability_active=0.2, expected_purchases_12m=3.0)
    prediction(fit, "C-3", predicted_value_12m=Decimal("200.00"), value_at_risk=Decimal("80.00"),
               probability_active=0.5, expected_purchases_12m=2.0)

    def order(ordering=None):
        query = {"ordering": ordering} if ordering else {}
        return customers_of(api_client.get(PREDICTIONS, query).json())

    assert order() == ["C-1", "C-3", "C-2"]
    assert order("predicted_value_12m") == ["C-2", "C-3", "C-1"]
    assert order("-value_at_risk") == ["C-2", "C-3", "C-1"]  # a tie goes by customer
    assert order("probability_active") == ["C-2", "C-3", "C-1"]
    assert order("-expected_purchases_12m") == ["C-2", "C-3", "C-1"]


def test_an_unknown_sort_key_is_a_400(api_client):
    r = api_client.get(PREDICTIONS, {"ordering": "customer__email"})

    assert r.status_code == 400
    assert list(r.json()) == ["ordering"]


def test_pages_keep_the_fit_beside_the_rows(api_client):
    fit = nightly_fit()
    for index in range(3):
        prediction(fit, f"C-{index}", predicted_value_12m=Decimal(100 + index))

    second = api_client.get(PREDICTIONS, {"page": 2, "page_size": 2}).json()

    assert second["count"] == 3 and customers_of(second) == ["C-0"]
    assert second["previous"] and second["next"] is None
    assert second["fit"]["as_of"] == "2025-06-30"


# ---------------------------------------------------------------------------------------------
# One customer's prediction


def test_a_customers_latest_prediction_comes_with_its_fit(api_client):
    customer = prediction(nightly_fit(date(2025, 5, 31), model=False), "C-1").customer
    CustomerPrediction.objects.create(
        fit=nightly_fit(AS_OF), as_of=AS_OF, customer=customer, frequency=3, recency_weeks=30.0,
        age_weeks=44.0, probability_active=0.7, expected_purchases_12m=1.5,
        expected_value_per_purchase=Decimal("120.00"), predicted_value_12m=Decimal("170.00"),
        value_at_risk=Decimal("60.00"), no_purchase_90d=0.55)

    r = api_client.get(customer_prediction_url("C-1"))

    assert r.status_code == 200
    body = r.json()
    assert (body["customer_id"], body["as_of"], body["predicted_value_12m"]) == (
        "C-1", "2025-06-30", "170.00")
    assert (body["fit"]["as_of"], body["fit"]["method"]) == ("2025-06-30", "model")


def test_an_unknown_customer_is_a_404_that_says_so(api_client):
    r = api_client.get(customer_prediction_url("C-404"))

    assert r.status_code == 404
    assert r.json() == {"code": "unknown_customer",
                        "detail": "No customer has customer_id 'C-404'."}


def test_a_customer_without_a_prediction_is_a_404_that_says_why(api_client):
    CustomerFactory(external_id="C-new")

    r = api_client.get(customer_prediction_url("C-new"))

    assert r.status_code == 404
    assert r.json() == {
        "code": "no_prediction",
        "detail": "No prediction is stored for customer 'C-new' yet: the nightly run predicts "
                  "for customers with a paid order."}


# ---------------------------------------------------------------------------------------------
# The fit's health


def test_before_any_fit_the_health_says_none(api_client):
    r = api_client.get(FIT)

    assert r.status_code == 200
    assert r.json() == {"method": "none",
                        "note": "no predictions stored yet (run_nightly makes them)",
                        "holdout": None}


def test_the_health_is_the_latest_nightly_fit_with_the_latest_holdout_check(api_client):
    buyer("C-1", 200, 100, 10)
    buyer("C-2", 300, 40)
    buyer("C-3", 150)
    predictions.fit(AS_OF, purpose=NIGHTLY, store=True)
    check = predictions.holdout(AS_OF, 12)

    health = api_client.get(FIT).json()

    assert health["as_of"] == "2025-06-30"
    assert health["method"] == "fallback"
    assert health["customers"] == 3 and health["repeat_customers"] == 2
    holdout = health["holdout"]
    assert holdout["weeks"] == 12
    assert holdout["method"] == "fallback"
    assert (holdout["calibration_end"], holdout["holdout_end"]) == ("2025-04-07", "2025-06-30")
    # In the 12 weeks after the split only C-1 (10 days before AS_OF) and C-2 (40) bought.
    assert holdout["actual_purchases"] == 2
    assert holdout["predicted_purchases"] == check.holdout["predicted_purchases"]
    assert sum(group["customers"] for group in holdout["by_calibration_purchases"]) == 3


# ---------------------------------------------------------------------------------------------
# At risk


def test_the_at_risk_list_gives_each_customers_reasons_from_the_nightly_scoring(api_client,
                                                                                settings):
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    settings.RETENTION_AT_RISK_OVERDUE_FACTOR = 2
    settings.RETENTION_AT_RISK_ACTIVE_BELOW = 0.5
    buyer("C-late", 300, 250, 200, 150)  # every 50 days, none for 150: overdue
    buyer("C-fine", 200, 100, 10)
    predictions.fit(AS_OF, purpose=NIGHTLY, store=True)
    atrisk.score(AS_OF)

    page = api_client.get(AT_RISK).json()

    assert page["fit"]["as_of"] == "2025-06-30" and page["fit"]["method"] == "fallback"
    assert page["count"] == 1
    (row,) = page["results"]
    stored = AtRisk.objects.get(customer__external_id="C-late")
    assert row == {
        "customer_id": "C-late", "name": stored.customer.name, "email": stored.customer.email,
        "as_of": "2025-06-30", "score": stored.score,
        "value_at_risk": str(stored.value_at_risk),
        "predicted_value_12m": str(stored.predicted_value_12m),
        "probability_active": 1.0, "days_since_last": 150, "usual_gap_days": 50,
        "reasons": ["Overdue: 150 days since the last order; usually every 50 days"],
        "reason_codes": ["overdue"],
    }


def test_the_at_risk_list_filters_by_customer_type(api_client, settings):
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    buyer("C-late", 300, 250, 200, 150)
    Customer.objects.filter(external_id="C-late").update(
        customer_type="organisation", sector="company", organisation_name="Late Ltd")
    buyer("C-also-late", 300, 250, 200, 150)
    predictions.fit(AS_OF, purpose=NIGHTLY, store=True)
    atrisk.score(AS_OF)

    firms = api_client.get(AT_RISK, {"customer_type": "organisation"}).json()
    people = api_client.get(AT_RISK, {"customer_type": "individual"}).json()
    wrong = api_client.get(AT_RISK, {"customer_type": "company"})

    assert [row["customer_id"] for row in firms["results"]] == ["C-late"]
    assert [row["customer_id"] for row in people["results"]] == ["C-also-late"]
    assert wrong.status_code == 400 and "customer_type" in wrong.json()


def test_at_risk_rows_carry_every_reason_in_words_and_codes(api_client):
    nightly_fit()
    at_risk("C-1", low_active=True, probability_active=0.3, overdue=True, days_since_last=90,
            usual_gap_days=30, complaint_subject="Charged twice",
            complaint_opened_at=datetime(2025, 6, 1, 9, tzinfo=UTC),
            membership_plan="All-access", membership_ends_on=date(2025, 7, 31),
            reason_count=4)

    (row,) = api_client.get(AT_RISK).json()["results"]

    assert row["reason_codes"] == ["low_active", "overdue", "complaint", "membership"]
    assert row["reasons"] == [
        "Unlikely to be still buying: 30 % chance of being active",
        "Overdue: 90 days since the last order; usually every 30 days",
        "Open complaint since 2025-06-01: Charged twice",
        "Membership “All-access” set not to renew (ends 2025-07-31)",
    ]
    assert row["name"] == "Name of C-1"


def test_at_risk_filter_by_reason(api_client, registries):
    # A reason another app contributes (here a stand-in for surveys' detractors), registered
    # after the API was loaded: its facts live in the row's details.
    atrisk.register_reason(atrisk.Reason(
        "detractor", "Detractor", annotate=lambda as_of, rows: rows, present=Q(pk=None),
        describe=lambda row, facts: f"Detractor: answered {facts['score']} out of 10"))
    nightly_fit()
    at_risk("C-overdue", overdue=True)
    at_risk("C-course", abandoned_course="Python for analysts", abandoned_progress=40,
            abandoned_since=date(2025, 5, 1))
    at_risk("C-both", overdue=True, details={"detractor": {"score": 3}}, reason_count=2)

    def who(reason):
        return sorted(customers_of(api_client.get(AT_RISK, {"reason": reason}).json()))

    assert who("overdue") == ["C-both", "C-overdue"]
    assert who("abandoned_course") == ["C-course"]
    assert who("detractor") == ["C-both"]
    assert who("complaint") == []
    both = api_client.get(AT_RISK, {"reason": "detractor"}).json()["results"][0]
    assert both["reason_codes"] == ["overdue", "detractor"]
    assert both["reasons"][-1] == "Detractor: answered 3 out of 10"
    r = api_client.get(AT_RISK, {"reason": "grumpy"})
    assert r.status_code == 400 and list(r.json()) == ["reason"]


def test_at_risk_sorts_by_value_at_risk_unless_asked_otherwise(api_client):
    nightly_fit()
    at_risk("C-1", value_at_risk=Decimal("10.00"), score=0.9, days_since_last=30,
            predicted_value_12m=Decimal("500.00"), overdue=True)
    at_risk("C-2", value_at_risk=Decimal("90.00"), score=0.2, days_since_last=200,
            predicted_value_12m=Decimal("100.00"), overdue=True)
    at_risk("C-3", value_at_risk=Decimal("50.00"), score=0.5, days_since_last=100,
            predicted_value_12m=Decimal("300.00"), overdue=True)

    def order(ordering=None):
        query = {"ordering": ordering} if ordering else {}
        return customers_of(api_client.get(AT_RISK, query).json())

    assert order() == ["C-2", "C-3", "C-1"]
    assert order("-score") == ["C-1", "C-3", "C-2"]
    assert order("-days_since_last") == ["C-2", "C-3", "C-1"]
    assert order("-predicted_value_12m") == ["C-1", "C-3", "C-2"]
    assert order("value_at_risk") == ["C-1", "C-3", "C-2"]


def test_at_risk_as_of_lists_that_day(api_client):
    nightly_fit(date(2025, 5, 31))
    nightly_fit(AS_OF)
    at_risk("C-old", as_of=date(2025, 5, 31), overdue=True)
    at_risk("C-new", overdue=True)

    latest = api_client.get(AT_RISK).json()
    earlier = api_client.get(AT_RISK, {"as_of": "2025-05-31"}).json()

    assert customers_of(latest) == ["C-new"] and latest["fit"]["as_of"] == "2025-06-30"
    assert customers_of(earlier) == ["C-old"] and earlier["fit"]["as_of"] == "2025-05-31"


def test_a_scored_day_with_nobody_at_risk_is_an_empty_list_with_its_fit(api_client):
    nightly_fit(AS_OF)

    page = api_client.get(AT_RISK, {"as_of": "2025-06-30"}).json()

    assert page["count"] == 0
    assert page["fit"]["as_of"] == "2025-06-30"


def test_the_backtest_is_empty_before_there_are_orders(api_client):
    with time_machine.travel(datetime(2025, 10, 15, 12, tzinfo=UTC), tick=False):
        r = api_client.get(BACKTEST)

    assert r.status_code == 200
    assert r.json() == {"today": "2025-10-15", "backtests": []}


def test_the_backtest_checks_the_month_ends_whose_90_days_are_over(api_client, settings):
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    buyer("C-back", 300, 200, 100, -30)  # bought again 30 days after AS_OF
    buyer("C-gone", 300, 200, 100)

    with time_machine.travel(datetime(2025, 10, 15, 12, tzinfo=UTC), tick=False):
        body = api_client.get(BACKTEST).json()

    assert body["today"] == "2025-10-15"
    assert [(test["as_of"], test["until"]) for test in body["backtests"]] == [
        ("2025-06-30", "2025-09-28"), ("2025-05-31", "2025-08-29"), ("2025-04-30", "2025-07-29")]
    june = body["backtests"][0]
    assert (june["customers"], june["did_not_buy"], june["base_rate"]) == (2, 1, 50.0)
    assert june["method"] == "fallback"


# ---------------------------------------------------------------------------------------------
# The published schema


def test_full_answers_match_the_published_schema(api_client, settings):
    """The schemathesis run meets empty lists only; these answers have every field filled."""
    settings.RETENTION_ACTIVITY_WINDOW_DAYS = 365
    buyer("C-1", 300, 250, 200, 150, -30)
    buyer("C-2", 200, 100, 10)
    predictions.fit(AS_OF, purpose=NIGHTLY, store=True)
    predictions.holdout(AS_OF, 12)
    atrisk.score(AS_OF)
    AtRisk.objects.filter(customer__external_id="C-1").update(
        low_active=True, complaint_subject="Late", membership_plan="Monthly",
        complaint_opened_at=datetime(2025, 6, 1, tzinfo=UTC),
        abandoned_course="Python", abandoned_progress=20, abandoned_since=date(2025, 4, 1))
    schema = schemathesis.openapi.from_dict(
        api_client.get("/api/schema/", {"format": "json"}).json())

    answers = [
        ("/api/v1/predictions/", PREDICTIONS),
        ("/api/v1/customers/{customer_id}/prediction/", customer_prediction_url("C-1")),
        ("/api/v1/customers/{customer_id}/prediction/", customer_prediction_url("C-404")),
        ("/api/v1/predictions/fit/", FIT),
        ("/api/v1/at-risk/", AT_RISK),
        ("/api/v1/at-risk/backtest/", BACKTEST),
    ]
    with time_machine.travel(datetime(2025, 10, 15, 12, tzinfo=UTC), tick=False):
        for path, url in answers:
            r = api_client.get(url)
            assert r.status_code in (200, 404)
            schema[path]["GET"].validate_response(schemathesis.Response(
                r.status_code, {"content-type": [r.headers["Content-Type"]]}, r.content,
                requests.Request("GET", f"http://testserver{url}").prepare(), 0.0, True))
    assert api_client.get(AT_RISK).json()["results"][0]["reason_codes"] == [
        "low_active", "overdue", "abandoned_course", "complaint", "membership"]


# ---------------------------------------------------------------------------------------------
# Queries


@pytest.mark.parametrize("n", [1, 30])
def test_the_prediction_list_costs_the_same_queries_for_any_number_of_rows(
        api_client, django_assert_num_queries, n):
    fit = nightly_fit()
    for index in range(n):
        prediction(fit, f"C-{index}")

    # token with its user, Platform group, latest nightly fit, count, the page's rows with
    # their customers joined
    with django_assert_num_queries(5):
        r = api_client.get(PREDICTIONS, {"page_size": 1000, "ordering": "-value_at_risk"})

    assert r.json()["count"] == n and len(r.json()["results"]) == n


@pytest.mark.parametrize("n", [1, 30])
def test_the_at_risk_list_costs_the_same_queries_for_any_number_of_rows(
        api_client, django_assert_num_queries, n):
    nightly_fit()
    for index in range(n):
        at_risk(f"C-{index}", overdue=True, complaint_subject="Late",
                complaint_opened_at=datetime(2025, 6, 1, tzinfo=UTC), reason_count=2)

    # token with its user, Platform group, latest scored day, its fit, count, the page's rows
    # with their customers joined
    with django_assert_num_queries(6):
        r = api_client.get(AT_RISK, {"page_size": 1000, "reason": "overdue"})

    assert r.json()["count"] == n and len(r.json()["results"]) == n


def test_a_customers_prediction_costs_one_query_after_authentication(
        api_client, django_assert_num_queries):
    prediction(nightly_fit(), "C-1")

    # token with its user, Platform group, the prediction with its customer and fit joined
    with django_assert_num_queries(3):
        r = api_client.get(customer_prediction_url("C-1"))

    assert r.status_code == 200
