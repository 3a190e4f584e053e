"""Work a web request causes, done after its answer has gone out, off the serving worker.

Without a broker, tasks run in-process: sending the fresh-link email inside the request
made the page answer a customer's address measurably later than an unknown one, and
sending it on the same worker after the answer delayed that worker's next request (from
anyone) instead. While a view runs (inside `RunAfterResponse`, a middleware) `later(work)`
keeps the work, once per callable however often it is asked for; when the server has sent
the answer (request_finished) the work goes to one background thread of the process,
which runs it with connections of its own and closes them after. Outside a request,
`later` runs the work at once.

RETENTION_AFTER_RESPONSE=inline runs the work on the serving thread after the answer
instead (the test suite does, to see its effects in the test's transaction). The hold
ends with the view whatever happens; work lost (a response never closed, a process
stopped first) is the outbox sweep's to make good, every minute.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.core.signals import request_finished
from django.db import connections

logger = logging.getLogger(__name__)
_state = threading.local()
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="after-response")


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


def _run(pending: list) -> None:
    for work in pending:
        try:
            work()
        except Exception:  # the answer is sent; nobody is left to tell but the log
            logger.exception("work after the response failed: %r", work)


def _in_background(pending: list) -> None:
    try:
        _run(pending)
    finally:
        connections.close_all()  # this thread's own connections


def flush() -> None:
    """Wait until the background thread has done what it was given (tests, shutdown)."""
    done: Future = _worker.submit(lambda: None)
    done.result()


def _after_response(**kwargs) -> None:
    pending, _state.pending = getattr(_state, "pending", None) or [], None
    if not pending:
        return
    if settings.RETENTION_AFTER_RESPONSE == "inline":
        _run(pending)
    else:
        _worker.submit(_in_background, pending)


request_finished.connect(_after_response, dispatch_uid="retention.after_response")
