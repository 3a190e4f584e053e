"""Who may see the managers' pages, the day their figures run to, and CSV responses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from retention.permissions import is_manager
from retention.safetext import SpreadsheetWriter


def managers_only(view):
    """Managers (the Managers group) and superusers; others are refused, strangers sent to log in."""
    @wraps(view)
    @never_cache  # customers' names and figures: no browser or proxy keeps a copy
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "/admin/login/")
        if not is_manager(user):
            raise PermissionDenied(_("The metrics pages are for managers."))
        return view(request, *args, **kwargs)
    return wrapper


def day_asked(query, available: list[date], *, missing: str) -> tuple[date | None, list[str]]:
    """`?as_of=` among the days that have stored rows (newest first); the newest by default.

    A day that is not a date, or has nothing stored, gives the newest and a message
    (`missing`, with %(day)s and %(latest)s) instead of an error page.
    """
    if not available:
        return None, []
    if not query.get("as_of"):
        return available[0], []
    try:
        day = date.fromisoformat(query["as_of"])
    except ValueError:
        return available[0], [_("Give as_of as a date (YYYY-MM-DD).")]
    if day not in available:
        return available[0], [missing % {"day": day, "latest": available[0]}]
    return day, []


def blank(value) -> str:
    return "" if value is None else str(value)


def csv_download(filename: str, header: list[str], rows: Iterable[list], *,
                 stream: bool = False) -> HttpResponse:
    """A CSV attachment. With `stream`, rows are sent as they are read (long customer lists).

    Cells go through the one writer (retention.safetext): text a spreadsheet would run as a
    formula, such as a customer named `=HYPERLINK(…)`, is neutralised.
    """
    writer = SpreadsheetWriter()

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    if stream:
        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse("".join(lines()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
