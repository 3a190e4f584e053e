"""fit_clv: what the operator reads (text and --json), holdout validation and errors."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from retention.value import clv
from retention.value.models import ClvFit, CustomerPrediction
from tests.factories import CustomerFactory, OrderFactory
from tests.retention.value.test_predictions import CDNOW, import_cdnow

pytestmark = pytest.mark.django_db


def fit_clv(*args) -> str:
    out = io.StringIO()
    call_command("fit_clv", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def fit_clv_fails(*args) -> str:
    with pytest.raises(CommandError) as failure:
        fit_clv(*args)
    return str(failure.value)


def buy(customer, day: date, amount: str = "100.00"):
    return OrderFactory(customer=customer, amount=Decimal(amount),
                        ordered_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def test_json_reports_both_fits_on_cdnow(tmp_path):
    import_cdnow(tmp_path)

    result = json.loads(fit_clv("--as-of", "1997-09-30", "--json"))

    assert result["customers"] == 2357
    bgnbd, spend = result["bgnbd"], result["gamma_gamma"]
    assert set(bgnbd) == {"r", "alpha", "a", "b", "log_likelihood", "converged"}
    assert {"p", "q", "gamma", "customers", "log_likelihood", "converged"} <= set(spend)
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert bgnbd[name] == pytest.approx(published, rel=0.01), name
    assert bgnbd["log_likelihood"] == pytest.approx(-9582.4, rel=0.001)
    assert bgnbd["converged"] is True and spend["converged"] is True
    for name, published in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert spend[name] == pytest.approx(published, rel=0.01), name
    assert spend["customers"] == 946
    assert result["fit"]["method"] == "model" and result["fit"]["repeat_customers"] == 946
    assert "holdout" not in result
    # Without --store the fit is recorded, but no customer's predictions are written.
    assert ClvFit.objects.get().purpose == ClvFit.Purpose.MANUAL
    assert not CustomerPrediction.objects.exists()


def test_text_names_the_parameters_and_convergence(tmp_path):
    import_cdnow(tmp_path)

    text = fit_clv("--as-of", "1997-09-30")

    assert ("Orders dated on or before 1997-09-30: 2357 customers, 946 bought on more than "
            "one day.") in text
    assert "Predictions use purchases: BG/NBD; spend: Gamma-Gamma." in text
    bgnbd = re.search(r"^BG/NBD: r = ([\d.]+), alpha = ([\d.]+), a = ([\d.]+), b = ([\d.]+); "
                      r"log-likelihood (-[\d.]+) over 2357 customers; converged$", text, re.MULTILINE)
    assert bgnbd, text
    assert [round(float(v), 2) for v in bgnbd.groups()] == [0.24, 4.41, 0.79, 2.43, -9582.43]
    assert re.search(r"^Gamma-Gamma: p = 6\.2\d+, q = 3\.74\d*, gamma = 15\.4\d+; "
                     r"log-likelihood -[\d.]+ over 946 customers; converged$", text, re.MULTILINE), text
    assert "simple rule because" not in text


def holdout_days_in_file() -> int:
    """Purchase days (customer and date) in weeks 40–78, counted from the file itself."""
    with open(CDNOW, newline="") as source:
        return len({(row["customer_id"], row["ordered_at"]) for row in csv.DictReader(source)
                    if "1997-10-01" <= row["ordered_at"] <= "1998-06-30"})


def test_holdout_compares_predicted_with_actual_purchases_on_cdnow(tmp_path):
    """Calibrate on weeks 1–39, compare with weeks 40–78. The actual count is the
    file's own purchase days in those weeks (1,882); BG/NBD predicts about 12 % fewer
    (1,653), and the table's groups add up to the totals."""
    import_cdnow(tmp_path)

    result = json.loads(fit_clv("--as-of", "1998-06-30", "--holdout-weeks", "39", "--json"))

    holdout = result["holdout"]
    assert holdout["calibration_end"] == "1997-09-30"
    assert (holdout["holdout_start"], holdout["holdout_end"]) == ("1997-10-01", "1998-06-30")
    assert holdout["customers"] == 2357 and result["customers"] == 2357
    assert result["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)  # fitted on weeks 1–39
    assert holdout["actual_purchases"] == holdout_days_in_file() == 1882
    assert holdout["predicted_purchases"] == pytest.approx(1653.4, abs=1)
    assert abs(holdout["error_percent"]) < 15
    rows = holdout["by_calibration_purchases"]
    assert [row["calibration_purchases"] for row in rows] == ["0", "1", "2", "3", "4", "5", "6",
                                                              "7+"]
    assert sum(row["customers"] for row in rows) == 2357
    assert sum(row["customers"] * row["actual_mean"] for row in rows) == pytest.approx(1882,
                                                                                      abs=1)
    assert sum(row["customers"] * row["predicted_mean"] for row in rows) == pytest.approx(
        holdout["predicted_purchases"], abs=1)
    # More purchases in calibration, more after it: predicted and actual alike.
    assert [row["predicted_mean"] for row in rows] == sorted(r["predicted_mean"] for r in rows)
    assert rows[0]["actual_mean"] < rows[-1]["actual_mean"]
    stored = ClvFit.objects.get()
    assert (stored.purpose, stored.as_of, stored.holdout_weeks) == (
        ClvFit.Purpose.HOLDOUT, date(1997, 9, 30), 39)
    assert not CustomerPrediction.objects.exists()

    text = fit_clv("--as-of", "1998-06-30", "--holdout-weeks", "39")

    assert ("Holdout 1997-10-01 to 1998-06-30 (39 weeks), 2357 customers: predicted 1653.4 "
            f"purchases, actual 1882 ({holdout['error_percent']:+.1f} %)") in text
    assert "calibration purchases  customers  predicted mean  actual mean" in text
    assert re.search(r"^\s+7\+\s+64\s+[\d.]+\s+[\d.]+$", text, re.MULTILINE), text


def test_store_writes_every_customers_prediction_as_the_nightly_run_does(settings):
    settings.TIME_ZONE = "UTC"
    first, second = CustomerFactory(), CustomerFactory()
    buy(first, date(2025, 1, 10))
    buy(second, date(2025, 2, 10))

    text = fit_clv("--as-of", "2025-06-30", "--store")

    assert "Orders dated on or before 2025-06-30: 2 customers, 0 bought on more than one day." \
        in text
    assert ("  simple rule because too little data to fit: 2 customers and 0 repeat buyers "
            "(at least 200 and 50 needed)") in text
    assert "BG/NBD: not fitted" in text and "Gamma-Gamma: not fitted" in text
    record = ClvFit.objects.get()
    assert record.purpose == ClvFit.Purpose.NIGHTLY
    assert set(CustomerPrediction.objects.filter(as_of=date(2025, 6, 30), fit=record)
               .values_list("customer", flat=True)) == {first.pk, second.pk}


def test_fit_whose_log_likelihood_cannot_be_computed_is_printed_not_crashed_on(
        settings, monkeypatch):
    """A spend likelihood that cannot be evaluated (NaN, as overflow far from the optimum
    gives): its log-likelihood is stored as null, and the text says so."""
    settings.TIME_ZONE = "UTC"
    settings.RETENTION_CLV_MIN_CUSTOMERS = 10
    settings.RETENTION_CLV_MIN_REPEAT_BUYERS = 5
    monkeypatch.setattr(clv.GammaGamma, "neg_log_likelihood",
                        lambda self, theta: (float("nan"), np.zeros(3)))
    start = date(2025, 1, 1)
    for repeat_days in [1, 2, 3, 1, 2, 5, 1, 1, 2, 3] * 2:
        customer = CustomerFactory()
        for week in range(repeat_days + 1):
            buy(customer, start + timedelta(weeks=week), f"{100 + week * 7}.00")

    text = fit_clv("--as-of", "2025-03-31")

    gamma_gamma = ClvFit.objects.get().gamma_gamma
    assert gamma_gamma["converged"] is False and gamma_gamma["log_likelihood"] is None
    assert re.search(r"^Gamma-Gamma: p = [\d.e+-]+, q = [\d.e+-]+, gamma = [\d.e+-]+; "
                     r"log-likelihood not computable over 20 customers; NOT converged$",
                     text, re.MULTILINE), text
    assert "spend: simple rule (the customer's mean purchase value)" in text
    assert "  simple rule because Gamma-Gamma did not converge" in text


@pytest.mark.parametrize("value", ["1997-13-01", "30/09/1997", "yesterday"])
def test_as_of_that_is_not_a_date_is_refused(value):
    message = fit_clv_fails("--as-of", value)

    assert message == f"--as-of: {value!r} is not a date (YYYY-MM-DD)."
    assert not ClvFit.objects.exists()


def test_holdout_without_orders_before_the_split_is_refused(settings):
    settings.TIME_ZONE = "UTC"
    buy(CustomerFactory(), date(2025, 3, 1))

    message = fit_clv_fails("--as-of", "2025-06-30", "--holdout-weeks", "26")

    # 26 weeks before 30 June is 30 December 2024.
    assert message == "no paid orders on or before 2024-12-30, where the calibration ends."
    assert not ClvFit.objects.exists()


def test_holdout_of_no_weeks_is_refused():
    message = fit_clv_fails("--as-of", "2025-06-30", "--holdout-weeks", "0")

    assert message == "the holdout needs at least one week."


def test_store_and_holdout_together_are_refused():
    message = fit_clv_fails("--as-of", "2025-06-30", "--holdout-weeks", "26", "--store")

    assert message == "--store and --holdout-weeks do not go together."
    assert not ClvFit.objects.exists()


def test_an_as_of_in_the_future_is_refused():
    from django.utils import timezone

    tomorrow = timezone.localdate() + timedelta(days=1)

    message = fit_clv_fails("--as-of", tomorrow.isoformat())

    assert "is in the future" in message
    assert not ClvFit.objects.exists()
