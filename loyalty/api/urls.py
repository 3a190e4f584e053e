"""Routes of the loyalty API, served under /api/v1/loyalty/ (loyalty/apps.py registers them
with retention.routes)."""

from django.urls import path
from loyalty.api import views
from retention.api.base import PlatformRouter

router = PlatformRouter()
router.register("rules", views.RuleViewSet, basename="loyalty-rule")
router.register("tiers", views.TierViewSet, basename="loyalty-tier")
router.register("rewards", views.RewardViewSet, basename="loyalty-reward")
router.register("adjustments", views.AdjustmentViewSet, basename="loyalty-adjustment")
router.register("redemptions", views.RedemptionViewSet, basename="loyalty-redemption")
router.register("referrals", views.ReferralViewSet, basename="loyalty-referral")

urlpatterns = [
    path("accounts/<str:customer_id>/", views.AccountView.as_view(), name="loyalty-account"),
    path("accounts/<str:customer_id>/entries/", views.EntryListView.as_view(),
         name="loyalty-account-entries"),
    *router.urls,
]
