"""The fresh-link page: the email leaves after the answer, limits count the real client and
hold under concurrency, and only a keyed hash of the address is kept."""

import hashlib
import io
import threading
from urllib.parse import urlencode

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import Client

from retention.account import fresh_links
from retention.account.models import LinkRequest
from retention.mail.models import OutboxMessage
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def thandi():
    return CustomerFactory(email="thandi@example.com", name="Thandi")


@pytest.fixture(autouse=True)
def _keep_the_tests_connection():
    """As Django's test client does: a request must not close the connection the test's
    transaction is on (Django closes old connections when a request starts and ends)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def wsgi_post(path: str, data: dict, **environ):
    """Answer a POST as a WSGI server does: the body first, close() after it is sent."""
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    secret = _get_new_csrf_string()
    body = urlencode({**data, "csrfmiddlewaretoken": _mask_cipher_secret(secret)}).encode()
    started = {}
    response = WSGIHandler()({
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "HTTP_HOST": "localhost", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "REMOTE_ADDR": "203.0.113.7",
        "HTTP_COOKIE": f"csrftoken={secret}", "wsgi.errors": io.StringIO(), **environ,
    }, lambda status, headers: started.update(status=status))
    return started, b"".join(response), response


@pytest.mark.django_db(transaction=True)  # the outbox wakes its senders on a real commit
def test_the_email_to_a_known_address_is_sent_after_the_answer(thandi, mailoutbox):
    started, body, response = wsgi_post("/link/", {"email": "thandi@example.com"})
    # The whole answer is out, the same as for an unknown address, and nothing is sent yet.
    assert started["status"].startswith("200")
    assert b"we have emailed a link to it" in body
    assert mailoutbox == []
    response.close()  # what the server does once the answer has gone out
    assert [m.to for m in mailoutbox] == [["thandi@example.com"]]
    assert OutboxMessage.objects.get().status == "sent"


def test_an_unknown_address_gets_the_same_answer_and_no_email(thandi, mailoutbox):
    unknown = wsgi_post("/link/", {"email": "nobody@example.com"})
    unknown[2].close()
    assert unknown[0]["status"].startswith("200")
    assert b"we have emailed a link to it" in unknown[1]
    assert mailoutbox == [] and not OutboxMessage.objects.exists()


def test_only_a_keyed_hash_of_the_address_is_kept(thandi, client, settings):
    client.post("/link/", {"email": "Thandi@Example.com"})
    kept = LinkRequest.objects.get().email_hash
    assert kept != hashlib.sha256(b"thandi@example.com").hexdigest()
    assert kept == fresh_links.email_hash("thandi@example.com")
    settings.SECRET_KEY = "another-key-another-hash"
    assert fresh_links.email_hash("thandi@example.com") != kept


def test_behind_a_proxy_one_client_does_not_block_fresh_links_for_everyone(thandi, settings):
    settings.RETENTION_LINK_REQUESTS_PER_HOUR = 1  # and 10 per address
    settings.RETENTION_TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.2")
    noisy = [client.post("/link/", {"email": f"n{i}@example.com"},
                         HTTP_X_FORWARDED_FOR="203.0.113.7").status_code for i in range(11)]
    assert noisy == [200] * 10 + [429]

    other = client.post("/link/", {"email": "thandi@example.com"},
                        HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert other.status_code == 200
    assert set(LinkRequest.objects.values_list("ip", flat=True)) == {"203.0.113.7",
                                                                     "198.51.100.20"}


def test_customer_pages_are_never_kept_by_a_browser_or_proxy(thandi, client):
    from retention.mail import links

    for url in (links.url(thandi, "account"), links.url(thandi, "preferences"),
                links.url(thandi, "unsubscribe"), "http://testserver/link/"):
        response = client.get(url.replace("http://127.0.0.1:8000", ""))
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_requests_at_once_for_one_address_never_pass_the_limit(settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SQLite takes one writer at a time)")
    settings.RETENTION_LINK_REQUESTS_PER_HOUR = 3
    CustomerFactory(email="thandi@example.com")
    barrier, outcomes = threading.Barrier(10), []

    def ask():
        try:
            barrier.wait()
            fresh_links.request_fresh_link("thandi@example.com", ip=None)
            outcomes.append("sent")
        except fresh_links.TooManyRequests:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refused"] * 7 + ["sent"] * 3
    assert LinkRequest.objects.count() == 3
    assert OutboxMessage.objects.filter(purpose="fresh_link").count() == 3


@pytest.mark.django_db(transaction=True)  # the background thread has connections of its own
def test_the_customer_is_found_and_emailed_off_the_serving_thread(
        thandi, mailoutbox, settings, monkeypatch):
    """The serving worker is free once the answer is out: its next request (anyone's) does
    not wait on the email, which would tell that the address was a customer's."""
    from retention import after_response

    settings.RETENTION_AFTER_RESPONSE = "thread"
    release, ran_on = threading.Event(), []
    real = fresh_links._send_if_customer

    def held(*args):
        ran_on.append(threading.current_thread().name)
        release.wait(30)
        real(*args)

    monkeypatch.setattr(fresh_links, "_send_if_customer", held)
    started, body, response = wsgi_post("/link/", {"email": "thandi@example.com"})
    response.close()  # returns at once although the work is held: it is not on this thread
    assert started["status"].startswith("200") and mailoutbox == []

    release.set()
    after_response.flush()
    assert len(ran_on) == 1 and ran_on[0].startswith("after-response")
    assert [m.to for m in mailoutbox] == [["thandi@example.com"]]


def test_look_alike_spellings_of_one_address_share_its_limit(settings, mailoutbox):
    """Unicode look-alikes (a dotless ı, a long ſ, the Kelvin sign) that the database's
    case-insensitive match finds as the same customer count against the same limit."""
    settings.RETENTION_LINK_REQUESTS_PER_HOUR = 1
    CustomerFactory(email="kim@hospital.example.com")
    spellings = ["kim@hospital.example.com", "kim@hosp\u0131tal.example.com",
                 "kim@ho\u017fpital.example.com", "\u212aim@hospital.example.com"]
    answers = [Client().post("/link/", {"email": email}).status_code for email in spellings]

    assert answers == [200, 429, 429, 429]
    assert len({fresh_links.email_hash(email) for email in spellings}) == 1


@pytest.mark.django_db(transaction=True)
def test_requests_at_once_from_one_address_never_pass_its_limit(settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SQLite takes one writer at a time)")
    settings.RETENTION_LINK_REQUESTS_PER_HOUR = 1  # ten per client address
    barrier, outcomes = threading.Barrier(40), []

    def ask(i):
        try:
            barrier.wait()
            fresh_links.request_fresh_link(f"n{i}@example.com", ip="203.0.113.7")
            outcomes.append("sent")
        except fresh_links.TooManyRequests:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 30 + ["sent"] * 10
    assert LinkRequest.objects.filter(ip="203.0.113.7").count() == 10
