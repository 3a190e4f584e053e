"""Routes of the REST API under /api/v1/."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from retention import api, predictions_api
from retention.metrics_api import (
    CohortsView,
    MetricsView,
    MigrationView,
    PriceUpdateView,
    SegmentsView,
)


class Router(DefaultRouter):
    # Platform ids may contain dots: /customers/a.json/ is customer "a.json", not a format.
    include_format_suffixes = False
    # Lists routed by hand (below), shown on the API root with the router's own.
    extra_lists = {"enrolments": "enrolment-list"}

    def get_api_root_view(self, api_urls=None):
        lists = {prefix: f"{basename}-list" for prefix, _viewset, basename in self.registry}
        return self.APIRootView.as_view(api_root_dict={**lists, **self.extra_lists})


router = Router()
router.register("customers", api.CustomerViewSet, basename="customer")
router.register("courses", api.CourseViewSet, basename="course")
router.register("bundles", api.BundleViewSet, basename="bundle")
router.register("price-changes", api.PriceChangeViewSet, basename="price-change")
router.register("orders", api.OrderViewSet, basename="order")
router.register("memberships", api.MembershipViewSet, basename="membership")
router.register("tickets", api.SupportTicketViewSet, basename="ticket")
router.register("predictions", predictions_api.PredictionViewSet, basename="prediction")
router.register("at-risk", predictions_api.AtRiskViewSet, basename="at-risk")

urlpatterns = [
    path("metrics/", MetricsView.as_view(), name="metrics"),
    path("metrics/cohorts/", CohortsView.as_view(), name="metrics-cohorts"),
    path("metrics/segments/", SegmentsView.as_view(), name="metrics-segments"),
    path("metrics/migration/", MigrationView.as_view(), name="metrics-migration"),
    path("metrics/price-update/", PriceUpdateView.as_view(), name="metrics-price-update"),
    path("predictions/fit/", predictions_api.FitView.as_view(), name="prediction-fit"),
    path(
        "customers/<str:customer_id>/prediction/",
        predictions_api.CustomerPredictionView.as_view(),
        name="customer-prediction",
    ),
    path("at-risk/backtest/", predictions_api.BacktestView.as_view(), name="at-risk-backtest"),
    # An enrolment's key is its customer and its course, so its URL has both.
    path(
        "enrolments/",
        api.EnrolmentViewSet.as_view({"get": "list", "post": "create"}),
        name="enrolment-list",
    ),
    path(
        "enrolments/<str:customer_id>/<str:course>/",
        api.EnrolmentViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update"}
        ),
        name="enrolment-detail",
    ),
    *router.urls,
]
