"""What customers receive and where its links lead: a real SMTP server on loopback, signed
links, the customer's pages, consent evidence, and an email service's webhooks."""

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent, tracking
from django.contrib.auth import get_user_model
from django.urls import reverse

from retention.account.models import LinkRequest
from retention.mail import consent, links, outbox
from retention.mail.models import (
    ConsentRecord,
    ContactPreferences,
    EmailClick,
    OutboxMessage,
    Suppression,
    Topic,
)
from tests.factories import CourseFactory, CustomerFactory, EnrolmentFactory

pytestmark = pytest.mark.django_db
Kind = OutboxMessage.Kind


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"
    settings.RETENTION_QUIET_HOURS = None


@pytest.fixture
def thandi():
    return CustomerFactory(name="Thandi", email="thandi@example.com", marketing_consent=True)


def path_of(url: str) -> str:
    return urlparse(url).path


def parts(message) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk()
            if part.get_content_maintype() == "text"}


def test_what_arrives_over_smtp_and_where_its_links_lead(thandi, smtp_inbox, client):
    outbox.queue(thandi, template="email/winback", purpose="winback", kind=Kind.MARKETING,
                 topic=Topic.OFFERS, key="winback-1",
                 context={"cta_url": "http://testserver/courses/"})

    assert outbox.send_due() == {OutboxMessage.Status.SENT: 1}

    (received,) = smtp_inbox.messages
    assert received["To"] == "thandi@example.com"
    assert received["Subject"] == "Thandi, we kept your place"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = parts(received)
    assert set(body) == {"text/plain", "text/html"}
    assert "Hello Thandi" in body["text/plain"] and "Hello Thandi" in body["text/html"]
    # The call to action goes through the click redirect and lands where it pointed.
    click = re.search(r'href="(http://testserver/r/[^"]+)"', body["text/html"]).group(1)
    landed = client.get(path_of(click))
    assert landed.status_code == 302 and landed["Location"] == "http://testserver/courses/"
    assert EmailClick.objects.get().url == "http://testserver/courses/"
    # The preferences link in the text part opens the preferences page.
    preferences = re.search(r"Email preferences: (\S+)", body["text/plain"]).group(1)
    page = client.get(path_of(preferences))
    assert page.status_code == 200 and "Email preferences" in page.content.decode()
    # The mail client's one-click unsubscribe (RFC 8058): a POST with this body, no cookie.
    unsubscribe = re.fullmatch(r"\s*<([^>]+)>\s*", str(received["List-Unsubscribe"])).group(1)
    answer = client.post(path_of(unsubscribe), {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert not ContactPreferences.objects.get(customer=thandi).offers
    record = ConsentRecord.objects.get(customer=thandi)
    assert (record.subject, record.granted, record.method) == ("offers", False, "one_click")


def test_a_link_opened_by_a_get_changes_nothing(thandi, client):
    for purpose, data in (("unsubscribe", {"t": Topic.OFFERS}), ("account", {}),
                          ("preferences", {})):
        response = client.get(path_of(links.url(thandi, purpose, **data)))
        assert response.status_code == 200

    assert ConsentRecord.objects.count() == 0
    preferences = consent.preferences_of(thandi)
    assert preferences.offers and preferences.surveys and preferences.paused_until is None
    thandi.refresh_from_db()
    assert thandi.marketing_consent


def test_the_unsubscribe_button_asks_then_confirms(thandi, client):
    url = path_of(links.url(thandi, "unsubscribe", t=Topic.NEW_COURSES))

    page = client.get(url)
    done = client.post(url)

    assert "Stop receiving <strong>new courses and early access</strong>" in page.content.decode()
    assert "You are unsubscribed" in done.content.decode()
    assert not consent.preferences_of(thandi).new_courses
    assert ConsentRecord.objects.get().method == "unsubscribe"


def test_the_preferences_form_saves_each_change_as_evidence(client, settings):
    settings.RETENTION_CONSENT_WORDING = "Yes, email me offers."
    customer = CustomerFactory(marketing_consent=False)
    url = path_of(links.url(customer, "preferences"))

    with time_machine.travel(datetime(2025, 8, 1, 9, tzinfo=UTC), tick=False):
        response = client.post(url, {"marketing_consent": "on", "offers": "on",
                                     "new_courses": "on", "surveys": "on", "pause_days": "30"})

    assert response.status_code == 302 and response["Location"].endswith("?saved=1")
    customer.refresh_from_db()
    assert customer.marketing_consent
    records = {(r.subject, r.granted, r.method): r for r in ConsentRecord.objects.all()}
    assert set(records) == {("marketing", True, "preferences"), ("loyalty", False, "preferences"),
                            ("pause", False, "preferences")}
    assert records["marketing", True, "preferences"].wording == "Yes, email me offers."
    assert consent.preferences_of(customer).paused_until == datetime(2025, 8, 31, 9, tzinfo=UTC)
    assert "Your preferences are saved." in client.get(response["Location"]).content.decode()


def test_the_customer_page_shows_their_courses_and_preferences(thandi, client):
    EnrolmentFactory(customer=thandi, course=CourseFactory(title="Data Analysis I"),
                     progress_percent=40)

    page = client.get(path_of(links.url(thandi, "account"))).content.decode()

    assert "Hello Thandi" in page and "Data Analysis I" in page and "40 % done" in page
    assert 'name="offers"' in page


@pytest.mark.parametrize("mangle", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # altered
    lambda token: "nonsense",  # forged
])
def test_a_forged_or_altered_link_gets_a_friendly_page_that_names_nobody(thandi, client, mangle):
    token = links.token(thandi, "account")

    response = client.get(reverse("account", kwargs={"token": mangle(token)}))

    page = response.content.decode()
    assert response.status_code == 400 and "This link does not work" in page
    assert "Email me a fresh link" in page and "Thandi" not in page


def test_an_expired_link_says_so(thandi, client, settings):
    settings.RETENTION_LINK_DAYS = {**settings.RETENTION_LINK_DAYS, "account": 30}
    with time_machine.travel(datetime(2025, 1, 1, tzinfo=UTC), tick=False):
        url = path_of(links.url(thandi, "account"))
    with time_machine.travel(datetime(2025, 2, 1, tzinfo=UTC), tick=False):
        response = client.get(url)

    assert response.status_code == 410 and "This link has expired" in response.content.decode()


def test_a_link_opens_only_its_own_purpose(thandi, client):
    survey_token = links.token(thandi, "survey")

    assert client.get(reverse("account", kwargs={"token": survey_token})).status_code == 400
    with pytest.raises(links.LinkInvalid):
        links.read(survey_token, "unsubscribe")


def test_staff_can_withdraw_every_link_of_a_customer(thandi, client):
    url = path_of(links.url(thandi, "account"))

    links.revoke(thandi)

    assert client.get(url).status_code == 400
    assert client.get(path_of(links.url(thandi, "account"))).status_code == 200


def test_a_fresh_link_answers_the_same_for_known_and_unknown_addresses(thandi, client):
    known = client.post(reverse("fresh-link"), {"email": "THANDI@example.com"})
    unknown = client.post(reverse("fresh-link"), {"email": "nobody@example.com"})

    def text(response):
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())

    assert known.status_code == unknown.status_code == 200
    assert text(known) == text(unknown)
    (message,) = OutboxMessage.objects.all()
    assert (message.customer, message.purpose, message.kind) == (thandi, "fresh_link",
                                                                 "transactional")
    assert "/c/" in message.body_text


def test_fresh_links_are_rate_limited_per_address(thandi, client, settings):
    settings.RETENTION_LINK_REQUESTS_PER_HOUR = 2
    answers = [client.post(reverse("fresh-link"), {"email": "thandi@example.com"}).status_code
               for _ in range(3)]

    assert answers == [200, 200, 429]
    assert OutboxMessage.objects.count() == 2
    assert LinkRequest.objects.count() == 2
    assert set(LinkRequest.objects.values_list("email_hash", flat=True)) != {"thandi@example.com"}


def test_the_platforms_consent_is_kept_with_its_wording(api_client):
    body = {"customer_id": "C-9", "email": "c9@example.com", "marketing_consent": True,
            "consent_wording": "Send me news and offers (checkout, 2025-08)."}

    api_client.post("/api/v1/customers/", body, format="json")
    api_client.post("/api/v1/customers/", body, format="json")  # the same again: no new record
    api_client.post("/api/v1/customers/", {**body, "marketing_consent": False}, format="json")

    records = list(ConsentRecord.objects.order_by("recorded_at", "pk")
                   .values_list("subject", "granted", "method", "wording"))
    assert records == [
        ("marketing", True, "platform", "Send me news and offers (checkout, 2025-08)."),
        ("marketing", False, "platform", "Send me news and offers (checkout, 2025-08).")]


def test_a_bounce_and_a_complaint_from_the_email_service_suppress_the_address(thandi):
    for kind in ("bounced", "complained"):
        address = "gone@example.com" if kind == "bounced" else "thandi@example.com"
        tracking.send(sender=object, event=AnymailTrackingEvent(event_type=kind, recipient=address),
                      esp_name="Postmark")

    assert dict(Suppression.objects.values_list("email", "reason")) == {
        "gone@example.com": "bounce", "thandi@example.com": "complaint"}
    thandi.refresh_from_db()
    assert not thandi.marketing_consent
    assert ConsentRecord.objects.get().method == "complaint"


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-1234")
    client.force_login(user)
    return client


def test_the_admin_previews_each_template_and_sends_a_test(staff_client):
    page = staff_client.get("/admin/retention/outboxmessage/templates/",
                            {"template": "email/winback"})
    assert page.status_code == 200
    assert "Thandi Nkosi" in page.content.decode() and "List-Unsubscribe" in page.content.decode()

    staff_client.post("/admin/retention/outboxmessage/templates/", {"template": "email/winback"})

    (message,) = OutboxMessage.objects.all()
    assert message.to_email == "ops@example.com" and message.subject.startswith("[Test] ")


def test_the_admin_counts_email_per_day(staff_client, thandi):
    message = outbox.queue(thandi, template="email/fresh_link", purpose="fresh_link",
                           kind=Kind.TRANSACTIONAL, key="k")
    outbox.send_due()
    OutboxMessage.objects.create(
        public_id=uuid.uuid4(), customer=thandi, to_email="x@example.com",
        kind=Kind.MARKETING, topic=Topic.OFFERS, purpose="p", template="t", subject="s",
        body_text="b", body_html="b", dedup_key="k2", status="suppressed",
        reason="no marketing consent", not_before=message.not_before)

    page = staff_client.get("/admin/retention/outboxmessage/daily/")

    (today,) = page.context_data["days"]
    assert today["sent"] == 1 and today["suppressed"] == [("no marketing consent", 1)]
    assert "1 no marketing consent" in page.content.decode()
    assert staff_client.get("/admin/retention/outboxmessage/").status_code == 200


def test_managers_may_read_the_outbox_but_not_resend(client, thandi):
    from django.core.management import call_command

    call_command("create_manager", "--username", "boss", stdout=io.StringIO())
    client.force_login(get_user_model().objects.get(username="boss"))

    failed = outbox.queue(thandi, template="email/fresh_link", purpose="fresh_link",
                          kind=Kind.TRANSACTIONAL, key="k")
    OutboxMessage.objects.filter(pk=failed.pk).update(status="failed", reason="x")

    page = client.get("/admin/retention/outboxmessage/")
    client.post("/admin/retention/outboxmessage/", {"action": "resend",
                                                     "_selected_action": [failed.pk]})

    assert page.status_code == 200 and "thandi@example.com" in page.content.decode()
    assert 'value="resend"' not in page.content.decode()
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_superusers_may_resend(staff_client, thandi):
    failed = outbox.queue(thandi, template="email/fresh_link", purpose="fresh_link",
                          kind=Kind.TRANSACTIONAL, key="k")
    OutboxMessage.objects.filter(pk=failed.pk).update(status="failed", reason="x")

    staff_client.post("/admin/retention/outboxmessage/", {
        "action": "resend", "_selected_action": [failed.pk]})

    failed.refresh_from_db()
    assert (failed.status, failed.reason) == ("queued", "resent by staff")


def test_links_carry_no_readable_customer_data(thandi):
    token = links.token(thandi, "account")

    assert "thandi" not in token.lower() and thandi.email not in token


def test_a_link_lifetime_per_purpose(thandi, settings):
    settings.RETENTION_LINK_DAYS = {**settings.RETENTION_LINK_DAYS, "unsubscribe": 365,
                                    "account": 1}
    with time_machine.travel(datetime(2025, 1, 1, tzinfo=UTC), tick=False):
        account_token = links.token(thandi, "account")
        unsubscribe_token = links.token(thandi, "unsubscribe", t=Topic.OFFERS)
    with time_machine.travel(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=2), tick=False):
        with pytest.raises(links.LinkExpired):
            links.read(account_token, "account")
        assert links.read(unsubscribe_token, "unsubscribe").data == {"t": "offers"}


@pytest.mark.django_db
def test_links_signed_before_the_module_moved_still_open():
    """Links already in customers' inboxes were signed with the salt "retention.links.PURPOSE"
    (the module's first path); moving the module must not change it."""
    from django.core import signing

    customer = CustomerFactory(email="salt@example.com")
    old = signing.dumps({"c": customer.pk, "g": customer.link_generation},
                        salt="retention.links.account", compress=True)
    assert links.read(old, "account").customer == customer


def test_a_lifetime_for_a_purpose_nobody_registered_is_reported_by_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.RETENTION_LINK_DAYS = {"acount": 60}  # a typo of "account"

    with pytest.raises(SystemCheckError, match="retention.E002.*'acount'"):
        call_command("check")
    assert links.lifetime_days("account") == 30  # the typo changed nothing


def test_a_token_of_a_purpose_nobody_registered_is_not_one_of_ours():
    from django.core import signing

    with pytest.raises(ValueError, match="unknown link purpose"):
        links.token(None, "coupon")
    forged = signing.dumps({}, salt="retention.links.coupon", compress=True)
    with pytest.raises(links.LinkInvalid):
        links.read(forged, "coupon")
