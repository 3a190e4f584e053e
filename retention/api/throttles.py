"""The API's throttles: per token or staff user, and per address for the anonymous.

Rates are read from RETENTION_API_RATES on each request (so a deployment, or a test, may
change them) and counted in the cache (CACHES: Redis when CACHE_URL names it, otherwise
files every process on the machine shares). A throttled call gets 429 with Retry-After.
"""

from django.conf import settings
from rest_framework import throttling

from retention.network import client_ip


class _Rated:
    def get_rate(self):
        return settings.RETENTION_API_RATES[self.scope]

    def get_ident(self, request):
        return client_ip(request) or "unknown"


class AnonRateThrottle(_Rated, throttling.AnonRateThrottle):
    scope = "anon"


class UserRateThrottle(_Rated, throttling.UserRateThrottle):
    scope = "user"
