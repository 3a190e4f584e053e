"""Benchmark the fresh-link page: does a known address answer later than an unknown one?

    python benchmarks/fresh_links.py [--requests 200] [--smtp-delay 0.05]

Runs the application in-process on a fresh SQLite file (the embedded default: no broker,
so email is sent in-process), with a real SMTP server on loopback that takes
--smtp-delay seconds to accept each message, as a mail server over a network does. It
times POST /link/ alternately for a customer's address and for an unknown one, each
answered as a WSGI server answers (the body, then close()), and prints the median and
95th percentile of both, with the email sent after the answer (the application's way)
and, for comparison, inside the request (the middleware taken out). Not part of
`make test`.
"""

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class SlowInbox:
    def __init__(self, delay: float):
        self.delay, self.count = delay, 0

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.count += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind")
    parser.add_argument("--smtp-delay", type=float, default=0.05, help="seconds per message")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="fresh-links-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="retention.settings", DEBUG="1",
                      DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
                      RETENTION_VAR_DIR=str(folder), EMAIL_HOST="127.0.0.1",
                      EMAIL_USE_TLS="0", RETENTION_LINK_REQUESTS_PER_HOUR="100000")
    os.environ.pop("CELERY_BROKER_URL", None)
    from aiosmtpd.controller import Controller

    inbox = SlowInbox(args.smtp_delay)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    os.environ["EMAIL_PORT"] = str(port)

    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    call_command("migrate", verbosity=0)
    from retention.sales.models import Customer

    Customer.objects.create(external_id="known", email="known@example.com", name="Known")

    def answer(app, email: str) -> float:
        secret = _get_new_csrf_string()
        body = urlencode({"email": email, "csrfmiddlewaretoken": _mask_cipher_secret(secret)})
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/link/", "SERVER_NAME": "localhost",
                   "SERVER_PORT": "80", "HTTP_HOST": "localhost", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(body.encode()), "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": "application/x-www-form-urlencoded",
                   "REMOTE_ADDR": "203.0.113.7", "HTTP_COOKIE": f"csrftoken={secret}",
                   "wsgi.errors": io.StringIO()}
        start = time.perf_counter()
        response = app(environ, lambda status, headers: None)
        b"".join(response)
        answered = time.perf_counter() - start  # the client has the whole answer here
        response.close()  # the work after the answer is handed to the background thread here
        return answered

    def run(label: str) -> None:
        app = WSGIHandler()
        known, unknown = [], []
        order = random.Random(1)
        for n in range(args.requests):
            pair = [(known, "known@example.com"), (unknown, "nobody@example.com")]
            order.shuffle(pair)
            for times, email in pair:
                time.sleep(0.02)  # the SMTP server's own thread settles between requests
                times.append(answer(app, email))

        def show(name, values):
            values = sorted(values)
            return (f"{name} median {statistics.median(values) * 1000:7.1f} ms, "
                    f"p95 {values[int(len(values) * 0.95) - 1] * 1000:7.1f} ms")
        print(f"{label}\n  {show('known  ', known)}\n  {show('unknown', unknown)}")

    run("the customer found and the email sent after the answer (the application):")
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "RunAfterResponse" not in m]
    run("the customer found and the email sent inside the request (for comparison):")
    print(f"messages the SMTP server accepted: {inbox.count}; machine: {os.cpu_count()} cores")
    controller.stop()


if __name__ == "__main__":
    main()
