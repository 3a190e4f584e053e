"""The managers' pages (server-rendered, for the Managers group and superusers)."""

from retention.views.cohorts import cohort_csv, cohort_page
from retention.views.customers import customer_list, customer_list_csv
from retention.views.overview import overview, overview_csv, parse, trend_csv
from retention.views.price_update import price_update_csv, price_update_page
from retention.views.scorecard import scorecard, scorecard_csv
from retention.views.segments import segment_csv, segment_page

__all__ = [
    "cohort_csv", "cohort_page", "customer_list", "customer_list_csv", "overview",
    "overview_csv", "parse", "price_update_csv", "price_update_page", "scorecard",
    "scorecard_csv", "segment_csv", "segment_page", "trend_csv",
]
