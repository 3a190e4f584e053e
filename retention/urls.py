from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from retention import routes
from retention.mail import webhooks
from retention.views import (
    account,
    at_risk,
    cohorts,
    customers,
    home,
    overview,
    price_update,
    scorecard,
    segments,
    value,
)

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    path("metrics/", overview.overview, name="metrics"),
    path("metrics/export.csv", overview.overview_csv, name="metrics-csv"),
    path("metrics/trend.csv", overview.trend_csv, name="trend-csv"),
    path("metrics/customers/", customers.customer_list, name="metrics-customers"),
    path("metrics/customers.csv", customers.customer_list_csv, name="metrics-customers-csv"),
    path("metrics/cohorts/", cohorts.cohort_page, name="cohorts"),
    path("metrics/cohorts.csv", cohorts.cohort_csv, name="cohorts-csv"),
    path("metrics/segments/", segments.segment_page, name="segments"),
    path("metrics/segments.csv", segments.segment_csv, name="segments-csv"),
    path("metrics/price-update/", price_update.price_update_page, name="price-update"),
    path("metrics/price-update.csv", price_update.price_update_csv, name="price-update-csv"),
    path("metrics/value/", value.value_page, name="value"),
    path("metrics/value.csv", value.value_csv, name="value-csv"),
    path("metrics/at-risk/", at_risk.at_risk_page, name="at-risk"),
    path("metrics/at-risk.csv", at_risk.at_risk_csv, name="at-risk-csv"),
    path("metrics/scorecard/", scorecard.scorecard, name="scorecard"),
    path("metrics/scorecard.csv", scorecard.scorecard_csv, name="scorecard-csv"),
    # Customers' pages, reached by signed links in emails (retention/mail/links.py).
    path("c/<str:token>/", account.account_page, name="account"),
    path("p/<str:token>/", account.preferences_page, name="account-preferences"),
    path("u/<str:token>/", account.unsubscribe, name="unsubscribe"),
    path("r/<str:token>/", account.click, name="click"),
    path("link/", account.fresh_link, name="fresh-link"),
    # The email service's delivery webhook (bounces, complaints), through django-anymail:
    # only the configured service's, and only with its secret (retention/mail/webhooks.py).
    path("anymail/", include((webhooks.urlpatterns(), "anymail"))),
    path("api/v1/", include("retention.api.urls")),
    # What the programs add (retention/routes.py).
    *routes.page_patterns(),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
