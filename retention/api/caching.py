"""The API's answers hold customers' data: no browser or proxy keeps a copy.

A middleware (settings.MIDDLEWARE) rather than a mixin, so that every answer under /api/
has it, the browsable API's pages and the errors included: `Cache-Control: private,
no-store` (Django's never_cache headers) unless a view set its own.
"""

from django.utils.cache import add_never_cache_headers

PREFIX = "/api/"


class NoStoreForAPI:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(PREFIX) and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
