"""Work a web request causes, done after its answer has gone out.

Without a broker, tasks run in-process: sending the fresh-link email inside the request
made the page answer a customer's address measurably later than an unknown one. While a
view runs (inside `RunAfterResponse`, a middleware) `later(work)` keeps the work, once per
callable however often it is asked for; when the server closes the response, after its
last byte (request_finished), the work runs. Outside a request, `later` runs the work at
once. The hold ends with the view whatever happens, so nothing outside a request is ever
held; work lost with a response that is never closed is the outbox sweep's to make good
(every minute).
"""

import logging
import threading
from collections.abc import Callable

from django.core.signals import request_finished

logger = logging.getLogger(__name__)
_state = threading.local()


def later(work: Callable[[], object]) -> None:
    """Run `work` after the current answer has gone out, or now outside a request."""
    kept = getattr(_state, "work", None)
    if kept is None:
        work()
    elif work not in kept:
        kept.append(work)


class RunAfterResponse:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _state.work = []
        try:
            response = self.get_response(request)
        finally:
            _state.pending, _state.work = _state.work, None
        return response


def _after_response(**kwargs) -> None:
    pending, _state.pending = getattr(_state, "pending", None) or [], None
    for work in pending:
        try:
            work()
        except Exception:  # the answer is sent; nobody is left to tell but the log
            logger.exception("work after the response failed: %r", work)


request_finished.connect(_after_response, dispatch_uid="retention.after_response")
