"""`/`: managers go to their metrics, other staff to the admin, strangers to log in."""

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect

from retention.permissions import is_manager


def home(request):
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login("/", "/admin/login/")
    if is_manager(user):
        return redirect("metrics")
    return redirect("admin:index")
