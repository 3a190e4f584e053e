from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from retention import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("metrics/", views.overview, name="metrics"),
    path("metrics/export.csv", views.overview_csv, name="metrics-csv"),
    path("metrics/trend.csv", views.trend_csv, name="trend-csv"),
    path("metrics/customers/", views.customer_list, name="metrics-customers"),
    path("metrics/customers.csv", views.customer_list_csv, name="metrics-customers-csv"),
    path("metrics/cohorts/", views.cohort_page, name="cohorts"),
    path("metrics/cohorts.csv", views.cohort_csv, name="cohorts-csv"),
    path("metrics/segments/", views.segment_page, name="segments"),
    path("metrics/segments.csv", views.segment_csv, name="segments-csv"),
    path("metrics/price-update/", views.price_update_page, name="price-update"),
    path("metrics/price-update.csv", views.price_update_csv, name="price-update-csv"),
    path("metrics/scorecard/", views.scorecard, name="scorecard"),
    path("metrics/scorecard.csv", views.scorecard_csv, name="scorecard-csv"),
    path("api/v1/", include("retention.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
