"""Routes of the REST API under /api/v1/."""

from django.urls import path

from retention import routes
from retention.api import activity, catalogue, customers, orders, predictions
from retention.api.base import PlatformRouter
from retention.api.metrics import (
    CohortsView,
    MetricsView,
    MigrationView,
    PriceUpdateView,
    SegmentsView,
)


class Router(PlatformRouter):
    # Lists routed by hand (below), shown on the API root with the router's own.
    extra_lists = {"enrolments": "enrolment-list"}

    def get_api_root_view(self, api_urls=None):
        lists = {prefix: f"{basename}-list" for prefix, _viewset, basename in self.registry}
        return self.APIRootView.as_view(api_root_dict={**lists, **self.extra_lists})


router = Router()
router.register("customers", customers.CustomerViewSet, basename="customer")
router.register("courses", catalogue.CourseViewSet, basename="course")
router.register("bundles", catalogue.BundleViewSet, basename="bundle")
router.register("price-changes", catalogue.PriceChangeViewSet, basename="price-change")
router.register("orders", orders.OrderViewSet, basename="order")
router.register("memberships", activity.MembershipViewSet, basename="membership")
router.register("tickets", activity.SupportTicketViewSet, basename="ticket")
router.register("predictions", predictions.PredictionViewSet, basename="prediction")
router.register("at-risk", predictions.AtRiskViewSet, basename="at-risk")

urlpatterns = [
    path("metrics/", MetricsView.as_view(), name="api-metrics"),
    path("metrics/cohorts/", CohortsView.as_view(), name="api-metrics-cohorts"),
    path("metrics/segments/", SegmentsView.as_view(), name="api-metrics-segments"),
    path("metrics/migration/", MigrationView.as_view(), name="api-metrics-migration"),
    path("metrics/price-update/", PriceUpdateView.as_view(), name="api-metrics-price-update"),
    path("predictions/fit/", predictions.FitView.as_view(), name="prediction-fit"),
    path(
        "customers/<str:customer_id>/prediction/",
        predictions.CustomerPredictionView.as_view(),
        name="customer-prediction",
    ),
    path("at-risk/backtest/", predictions.BacktestView.as_view(), name="at-risk-backtest"),
    # An enrolment's key is its customer and its course, so its URL has both.
    path(
        "enrolments/",
        activity.EnrolmentViewSet.as_view({"get": "list", "post": "create"}),
        name="enrolment-list",
    ),
    path(
        "enrolments/<str:customer_id>/<str:course>/",
        activity.EnrolmentViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update"}
        ),
        name="enrolment-detail",
    ),
    # The programs' parts of the API (retention/routes.py): /api/v1/loyalty/ …
    *routes.api_patterns(),
    *router.urls,
]
