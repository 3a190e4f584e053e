"""Email queued while a web request is answered is sent after the answer has gone out.

Without a broker, tasks run in-process: sending inside the request made the fresh-link page
answer a known address measurably later than an unknown one. While a view runs (inside
this middleware) the outbox's wake-up is held (`holding()`); once the response is closed
by the server, after its last byte (request_finished), the senders are woken once. The
hold ends with the view whatever happens, so nothing outside a request is held; a wake-up
lost with a response that is never closed is made good by the outbox sweep (every minute).
"""

import threading

from django.core.signals import request_finished

_state = threading.local()


def holding() -> bool:
    """Whether a web request is being answered in this thread (wake-ups wait for its end)."""
    return getattr(_state, "holding", False)


def hold(wake) -> None:
    """Call `wake` (once per request however many times it is held) after the answer."""
    _state.pending = wake


class SendEmailAfterResponse:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _state.holding, _state.pending = True, None
        try:
            response = self.get_response(request)
        finally:
            _state.holding = False
        return response


def _after_response(**kwargs) -> None:
    wake, _state.pending = getattr(_state, "pending", None), None
    if wake is not None:
        wake()


request_finished.connect(_after_response, dispatch_uid="retention.middleware.after_response")
