"""Customers' loyalty pages under /loyalty/: redeeming a reward from the customer's page (a
confirmation page, its POST, the code), and the public landing page of a referral link."""

from django.urls import path

from loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("redeem/<str:token>/<slug:reward_code>/", views.redeem, name="redeem"),
    path("redeemed/<str:token>/<int:redemption_id>/", views.redeemed, name="redeemed"),
    path("join/<str:code>/", views.join, name="join"),
]
