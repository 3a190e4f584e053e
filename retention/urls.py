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
    path("metrics/scorecard/", views.scorecard, name="scorecard"),
    path("metrics/scorecard.csv", views.scorecard_csv, name="scorecard-csv"),
    path("api/v1/", include("retention.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
