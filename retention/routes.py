"""URLs the programs add, without retention importing them: an app registers its pages and
its part of the REST API from AppConfig.ready(), and retention's URLconfs include them.

    from retention import routes
    routes.register_pages("loyalty/", "loyalty.urls")          # site pages under /loyalty/
    routes.register_api("loyalty/", "loyalty.api.urls")        # under /api/v1/loyalty/

The URLconfs are read after every app is ready, so the order of apps does not matter.
Registering the same prefix and module again changes nothing; another module for a
prefix already taken is refused.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path

PAGES: dict[str, str] = {}
API: dict[str, str] = {}


def _register(table: dict[str, str], prefix: str, module: str) -> None:
    if table.get(prefix) == module:
        return
    if prefix in table:
        raise ImproperlyConfigured(f"the URL prefix {prefix!r} is taken by {table[prefix]}")
    table[prefix] = module


def register_pages(prefix: str, module: str) -> None:
    _register(PAGES, prefix, module)


def register_api(prefix: str, module: str) -> None:
    _register(API, prefix, module)


def page_patterns() -> list:
    return [path(prefix, include(module)) for prefix, module in PAGES.items()]


def api_patterns() -> list:
    return [path(prefix, include(module)) for prefix, module in API.items()]
