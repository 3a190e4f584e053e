"""fit_clv --as-of YYYY-MM-DD [--holdout-weeks N] [--store] [--json]: fit the predicted-value models."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention.value import predictions
from retention.value.models import ClvFit


class Command(BaseCommand):
    help = (
        "Fit BG/NBD and Gamma-Gamma on the paid orders dated on or before --as-of and print "
        "their parameters, log-likelihood, customer counts and convergence. With "
        "--holdout-weeks N, fit on the orders up to N weeks before --as-of instead and compare "
        "predicted with actual purchases in those N weeks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", required=True, help="Last day of orders, YYYY-MM-DD.")
        parser.add_argument("--holdout-weeks", type=int,
                            help="Hold out the last N weeks up to --as-of and validate on them.")
        parser.add_argument("--store", action="store_true",
                            help="Store every customer's predictions for --as-of (as the "
                                 "nightly run does).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        try:
            as_of = date.fromisoformat(options["as_of"])
        except ValueError:
            raise CommandError(f"--as-of: {options['as_of']!r} is not a date (YYYY-MM-DD).") from None
        if as_of > timezone.localdate():
            # T would run past the last order anyone could have placed: every customer
            # would look longer silent than they are.
            raise CommandError(f"--as-of {as_of} is in the future; the latest is today, "
                               f"{timezone.localdate()}.")
        weeks = options["holdout_weeks"]
        if weeks is not None:
            if options["store"]:
                raise CommandError("--store and --holdout-weeks do not go together.")
            try:
                record = predictions.holdout(as_of, weeks)
            except predictions.HoldoutError as exc:
                raise CommandError(f"{exc}.") from None
        else:
            purpose = ClvFit.Purpose.NIGHTLY if options["store"] else ClvFit.Purpose.MANUAL
            record = predictions.fit(as_of, purpose=purpose, store=options["store"])
        result = {**spec_shape(record), "fit": predictions.describe(record)}
        if record.holdout is not None:
            result["holdout"] = record.holdout
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self._print(record, result)

    def _print(self, record: ClvFit, result: dict) -> None:
        out = self.stdout.write
        out(f"Orders dated on or before {record.as_of}: {record.customers} customers, "
            f"{record.repeat_customers} bought on more than one day.")
        out(f"Predictions use {record.method_summary()}.")
        for reason in record.fallback_reasons:
            out(f"  simple rule because {reason}")
        for name, keys in (("BG/NBD", ("r", "alpha", "a", "b")),
                           ("Gamma-Gamma", ("p", "q", "gamma"))):
            fit = result["fit"]["bgnbd" if name == "BG/NBD" else "gamma_gamma"]
            if not fit:
                out(f"{name}: not fitted")
                continue
            # A fit that ran off to infinity is stored with nulls (JSON has no NaN).
            values = ", ".join(f"{key} = {_number(fit[key], '.6g')}" for key in keys)
            out(f"{name}: {values}; log-likelihood {_number(fit['log_likelihood'], '.2f')} over "
                f"{fit['customers']} customers; {'converged' if fit['converged'] else 'NOT converged'}")
        if "frequency_spend_correlation" in (result["fit"]["gamma_gamma"] or {}):
            corr = result["fit"]["gamma_gamma"]["frequency_spend_correlation"]
            if corr is not None:
                out(f"Frequency–spend correlation (Gamma-Gamma assumes none): {corr:.3f}")
        if record.holdout:
            h = record.holdout
            out(f"Holdout {h['holdout_start']} to {h['holdout_end']} ({record.holdout_weeks} weeks), "
                f"{h['customers']} customers: predicted {h['predicted_purchases']:.1f} purchases, "
                f"actual {h['actual_purchases']}"
                + (f" ({h['error_percent']:+.1f} %)" if h["error_percent"] is not None else ""))
            out(f"  mean absolute error per customer: {h['mean_absolute_error']:.3f} purchases; "
                f"{h['holdout_customers_bought']} of them bought in the holdout")
            out("  calibration purchases  customers  predicted mean  actual mean")
            for row in h["by_calibration_purchases"]:
                out(f"  {row['calibration_purchases']:>21}  {row['customers']:>9}  "
                    f"{row['predicted_mean']:>14.3f}  {row['actual_mean']:>11.3f}")


def _number(value, spec: str) -> str:
    return "not computable" if value is None else format(value, spec)


def spec_shape(record: ClvFit) -> dict:
    """The object of the design's fit_clv --json: customers, bgnbd and gamma_gamma."""
    def pick(data: dict, keys) -> dict | None:
        if not data:
            return None
        return {key: data.get(key) for key in keys}

    return {
        "customers": record.customers,
        "bgnbd": pick(record.bgnbd, ("r", "alpha", "a", "b", "log_likelihood", "converged")),
        "gamma_gamma": pick(record.gamma_gamma,
                            ("p", "q", "gamma", "customers", "log_likelihood", "converged",
                             "frequency_spend_correlation")),
    }
