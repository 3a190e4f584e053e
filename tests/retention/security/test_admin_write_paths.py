"""In the admin, a manager who may only view changes nothing and never holds a customer's
working link; staff who may change still can."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from retention.mail import links, outbox
from retention.mail.models import ConsentRecord, OutboxMessage
from retention.sales.models import Customer
from retention.value.models import FollowUp
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
TOKEN = links.TOKEN
CUSTOMERS = reverse("admin:retention_customer_changelist")


@pytest.fixture
def viewer(view_only_manager):
    return view_only_manager


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def ann():
    return CustomerFactory(external_id="ann", name="Ann Dlamini", email="ann@example.com",
                           marketing_consent=False)


def act(client, action: str, *customers):
    return client.post(CUSTOMERS, {"action": action, "_selected_action": [c.pk for c in customers]})


def test_a_viewer_is_not_offered_and_cannot_run_the_link_actions(viewer_client, ann):
    page = viewer_client.get(CUSTOMERS).content.decode()
    assert "revoke_links" not in page and "email_page_link" not in page
    generation = ann.link_generation

    for action in ("revoke_links", "email_page_link"):
        act(viewer_client, action, ann)

    ann.refresh_from_db()
    assert ann.link_generation == generation
    assert not OutboxMessage.objects.exists()


def test_staff_who_may_change_withdraw_links_and_email_a_fresh_one(admin_client, ann, mailoutbox):
    old = links.url(ann, "account")
    act(admin_client, "revoke_links", ann)
    ann.refresh_from_db()
    with pytest.raises(links.LinkInvalid):
        links.read(old.rsplit("/", 2)[-2], "account")

    response = act(admin_client, "email_page_link", ann)
    assert response.status_code == 302
    message = OutboxMessage.objects.get(purpose="fresh_link")
    assert message.to_email == "ann@example.com"
    assert links.read(re.search(r"/c/([^/]+)/", message.body_text)[1], "account").customer == ann


def test_the_customer_admin_shows_a_preview_not_the_customers_working_link(viewer_client, ann):
    change = viewer_client.get(reverse("admin:retention_customer_change", args=[ann.pk]))
    assert change.status_code == 200
    assert not TOKEN.search(change.content.decode())
    preview_url = reverse("admin:retention_customer_page", args=[ann.pk])
    assert preview_url in change.content.decode()

    preview = viewer_client.get(preview_url)
    body = preview.content.decode()
    assert preview.status_code == 200 and "Staff preview" in body and "Ann Dlamini" in body
    assert reverse("admin:retention_customer_change", args=[ann.pk]) in body  # the way back
    assert 'method="post"' not in body and "Save my preferences" not in body
    assert not TOKEN.search(body)
    assert "no-store" in preview["Cache-Control"]

    # Posting to the preview saves nothing: no consent is recorded in the customer's name.
    viewer_client.post(preview_url, {"marketing_consent": "on", "offers": "on"})
    ann.refresh_from_db()
    assert not ann.marketing_consent and not ConsentRecord.objects.exists()


def test_the_preview_is_refused_to_strangers_and_staff_without_permission(
        client, django_user_model, ann):
    preview_url = reverse("admin:retention_customer_page", args=[ann.pk])
    assert client.get(preview_url).status_code == 302  # to the login page
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get(preview_url).status_code == 403
    assert client.get(reverse("admin:retention_customer_page", args=[999999])).status_code == 404


def test_an_email_in_the_admin_hides_the_customers_links(viewer_client, ann):
    ann.marketing_consent = True
    ann.save()
    message = outbox.queue(ann, template="email/new_course", purpose="new_course",
                           kind=outbox.Kind.MARKETING, topic="new_courses", key="nc:ann",
                           context={"course_title": "SQL"})
    assert TOKEN.search(message.body_text) and TOKEN.search(str(message.headers))

    page = viewer_client.get(reverse("admin:retention_outboxmessage_change", args=[message.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "SQL" in body
    assert not TOKEN.search(body)
    assert links.HIDDEN in body


def test_a_viewer_cannot_send_a_test_email(viewer_client, mailoutbox):
    url = reverse("admin:retention_outboxmessage_templates")
    page = viewer_client.get(url)
    assert page.status_code == 200 and "Send a test" not in page.content.decode()

    assert viewer_client.post(url, {"template": "email/fresh_link"}).status_code == 403
    assert not OutboxMessage.objects.exists() and not mailoutbox


def test_staff_who_may_change_the_outbox_send_a_test(
        admin_client, admin_user, mailoutbox, django_capture_on_commit_callbacks):
    admin_user.email = "admin@example.com"
    admin_user.save()
    url = reverse("admin:retention_outboxmessage_templates")
    assert "Send a test" in admin_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(url, {"template": "email/fresh_link"}).status_code == 302
    assert [(m.to, m.subject[:6]) for m in mailoutbox] == [(["admin@example.com"], "[Test]")]


def test_a_viewer_cannot_mark_follow_ups_done(viewer_client, viewer, ann):
    follow_up = FollowUp.objects.create(customer=ann, assigned_to=viewer, created_by=viewer,
                                        reason="overdue")
    viewer_client.post(reverse("admin:retention_followup_changelist"),
                       {"action": "mark_done", "_selected_action": [follow_up.pk]})
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUp.Status.OPEN


def test_a_view_only_manager_changes_no_customer_through_the_admin(viewer_client, ann):
    url = reverse("admin:retention_customer_change", args=[ann.pk])
    response = viewer_client.post(url, {"external_id": "ann", "name": "Changed",
                                        "customer_type": "individual", "email": "x@example.com",
                                        "marketing_consent": "on"})
    assert response.status_code == 403
    assert Customer.objects.get(pk=ann.pk).name == "Ann Dlamini"


def test_the_template_preview_holds_the_whole_html_part(viewer_client):
    """The srcdoc attribute is escaped: the quotes of the email's HTML do not end it early."""
    from html.parser import HTMLParser

    class Frames(HTMLParser):
        srcdoc = None

        def handle_starttag(self, tag, attrs):
            if tag == "iframe":
                self.srcdoc = dict(attrs).get("srcdoc")

    page = viewer_client.get(reverse("admin:retention_outboxmessage_templates"),
                             {"template": "email/fresh_link"})
    frames = Frames()
    frames.feed(page.content.decode())
    assert frames.srcdoc is not None
    assert frames.srcdoc.lstrip().lower().startswith("<!doctype html>")
    assert "</html>" in frames.srcdoc and "Open my page" in frames.srcdoc


def test_a_viewer_cannot_switch_off_or_run_the_schedules(client, view_only_manager):
    from django_celery_beat.models import PeriodicTask

    nightly = PeriodicTask.objects.filter(enabled=True).first()
    assert nightly is not None  # migration 0002 makes the nightly schedule
    client.force_login(view_only_manager)
    page = client.get("/admin/django_celery_beat/periodictask/").content.decode()
    assert "disable_tasks" not in page and "run_tasks" not in page
    for action in ("disable_tasks", "toggle_tasks", "run_tasks"):
        client.post("/admin/django_celery_beat/periodictask/",
                    {"action": action, "_selected_action": [nightly.pk]})
    nightly.refresh_from_db()
    assert nightly.enabled


def test_staff_who_may_change_schedules_still_switch_them(admin_client):
    from django_celery_beat.models import PeriodicTask

    nightly = PeriodicTask.objects.filter(enabled=True).first()
    admin_client.post("/admin/django_celery_beat/periodictask/",
                      {"action": "disable_tasks", "_selected_action": [nightly.pk]})
    nightly.refresh_from_db()
    assert not nightly.enabled


def test_nobody_reads_the_platforms_api_token_in_the_admin(admin_client, view_only_manager,
                                                          platform_user, client):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=platform_user)
    client.force_login(view_only_manager)
    for who in (admin_client, client):  # a superuser, and a manager who may view everything
        assert who.get("/admin/authtoken/tokenproxy/").status_code == 404
        assert token.key not in who.get("/admin/").content.decode()


def test_adding_to_lists_does_not_let_one_make_a_list(client, view_only_manager):
    from retention.value.models import ReEngagementList

    view_only_manager.user_permissions.add(
        Permission.objects.get(codename="add_reengagementmember"))
    ann = CustomerFactory()
    client.force_login(view_only_manager)
    response = client.post("/metrics/at-risk/", {
        "action": "add_to_list", "customers": [ann.pk], "new_list": "made without permission"},
        follow=True)
    assert not ReEngagementList.objects.exists()
    assert "not make a new one" in response.content.decode()
    existing = ReEngagementList.objects.create(name="Spring win-back")
    client.post("/metrics/at-risk/", {"action": "add_to_list", "customers": [ann.pk],
                                      "existing_list": existing.pk})
    assert existing.members.count() == 1
