"""The address a request came from, behind as many reverse proxies as the settings trust.

With RETENTION_TRUSTED_PROXY_COUNT = 0 (the default) it is REMOTE_ADDR: X-Forwarded-For is
the client's to write and is ignored. Behind N proxies that each append the address they
were reached from, it is the N-th address from the right of X-Forwarded-For (as DRF's
NUM_PROXIES reads it). The login throttle, the API's throttles and the fresh-link limit
all count by this one address.
"""

from django.conf import settings


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.RETENTION_TRUSTED_PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if part.strip()]
        if forwarded:
            return forwarded[-min(count, len(forwarded))]
    return remote
