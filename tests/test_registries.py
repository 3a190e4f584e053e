"""Every registry retention offers works for an app it has never heard of.

tests/throwaway is such an app: installed for a test, its AppConfig.ready() registers a
section of the customer's page, a nightly step, an at-risk reason, figures beyond the spec,
a link purpose, an email preview and a customer-admin inline, exactly as README's
*Extending* shows, and each part appears where users see it. A second ready() changes
nothing; what the registries refuse is checked last, with retention's own registrations.
"""

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse

from retention.account import sections
from retention.figures import Figures, register_figures, registry, spec
from retention.mail import links, previews
from retention.nightly import Step, register_step
from retention.value import atrisk
from retention.value.models import AtRisk
from tests.factories import CourseFactory, CustomerFactory, EnrolmentFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def throwaway(registries, settings):
    """The throwaway app installed (and its registrations undone afterwards). Through the
    `settings` fixture, so that a test's other settings unwind in the same order."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.throwaway"]


@pytest.fixture
def vip():
    customer = CustomerFactory(email="ada@vip.example", name="Ada")
    OrderFactory(customer=customer, ordered_at=datetime(2025, 6, 1, 12, tzinfo=UTC),
                 amount=Decimal("100.00"))
    EnrolmentFactory(customer=customer, course=CourseFactory(title="Accounting"),
                     started_on=date(2025, 6, 1), progress_percent=40)
    return customer


def test_the_apps_section_is_on_the_customers_page(throwaway, vip, client):
    r = client.get(links.url(vip, "account"))

    assert r.status_code == 200
    page = r.content.decode()
    assert "Welcome back, Ada" in page
    # after retention's own section (order 10 against 50)
    assert page.index("Your courses") < page.index("Welcome back, Ada")
    other = CustomerFactory(email="bo@example.com")
    assert "Welcome back" not in client.get(links.url(other, "account")).content.decode()


def test_the_apps_step_runs_each_night_in_its_place(throwaway, vip):
    out = io.StringIO()
    call_command("run_nightly", "--date", "2025-06-30", stdout=out)

    from retention.nightly.models import NightlyRun

    names = [name for name, _outcome, _seconds in NightlyRun.objects.get().outcomes]
    assert names[-3:] == ["outbox", "throwaway tidy-up", "change log"]
    assert ["throwaway tidy-up", "tidied up after 2025-06-30"] in [
        outcome[:2] for outcome in NightlyRun.objects.get().outcomes]


def test_the_apps_reason_is_scored_kept_in_details_and_shown(throwaway, vip, settings,
                                                            admin_client, api_client):
    settings.RETENTION_CLV_MIN_CUSTOMERS = 1000  # the simple rule: no model to fit here
    call_command("run_nightly", "--date", "2025-06-30", stdout=io.StringIO())

    row = AtRisk.objects.get(customer=vip)
    assert row.details == {"vip": {"domain": "vip.example", "length": 15}}
    assert atrisk.codes_of(row)[-1] == "vip"
    assert atrisk.in_words(row)[0] == "VIP of vip.example (15 chars)"  # most telling first

    page = admin_client.get("/metrics/at-risk/", {"reason": "vip"})
    assert [r.customer for r in page.context["page"]] == [vip]
    assert "A VIP: 1" in page.content.decode() and "VIP of vip.example" in page.content.decode()
    answer = api_client.get("/api/v1/at-risk/", {"reason": "vip"}).json()
    assert [(r["customer_id"], r["reason_codes"][-1]) for r in answer["results"]] == [
        (vip.external_id, "vip")]


def test_the_apps_figures_follow_the_spec_in_every_answer(throwaway, vip):
    out = io.StringIO()
    call_command("compute_metrics", "--start", "2025-06-01", "--end", "2025-06-30", "--json",
                 stdout=out)

    figures = json.loads(out.getvalue())
    keys = [key for key in figures if key != "period"]
    assert keys == [*spec.KEYS, "throwaway_buyers_twice"]
    assert figures["buyers"] == 1 and figures["throwaway_buyers_twice"] == 2
    assert registry.definitions()["throwaway_buyers_twice"] == "Twice the buyers (a test figure)."


def test_the_apps_figures_are_on_the_api_the_overview_and_its_csv(throwaway, vip, admin_client,
                                                                    api_client):
    query = {"start": "2025-06-01", "end": "2025-06-30"}
    assert api_client.get("/api/v1/metrics/", query).json()["throwaway_buyers_twice"] == 2

    page = admin_client.get("/metrics/", {"period": "custom", **query})
    more = dict(page.context["groups"])["More figures"]
    assert [(row["key"], row["value"]) for row in more] == [("throwaway_buyers_twice", 2)]
    csv = admin_client.get("/metrics/export.csv", {"period": "custom", **query})
    assert "throwaway_buyers_twice,2," in csv.content.decode()


def test_the_apps_link_purpose_signs_and_expires_on_its_own_terms(throwaway, vip, settings):
    with time_machine.travel(datetime(2025, 6, 1, tzinfo=UTC), tick=False):
        token = links.token(vip, "throwaway", order="A-1")

    with time_machine.travel(datetime(2025, 6, 3, tzinfo=UTC), tick=False):
        assert links.read(token, "throwaway").data == {"order": "A-1"}
        with pytest.raises(links.LinkInvalid):
            links.read(token, "account")  # a link of one purpose opens nothing else
    with time_machine.travel(datetime(2025, 6, 5, tzinfo=UTC), tick=False):
        with pytest.raises(links.LinkExpired):  # its own 3 days
            links.read(token, "throwaway")
        settings.RETENTION_LINK_DAYS = {"throwaway": 9}
        assert links.read(token, "throwaway").customer == vip
    with pytest.raises(ValueError, match="no URL of ours"):
        links.url(vip, "throwaway")  # its app routes its own pages


def test_the_apps_email_is_among_the_previews(throwaway, admin_client):
    url = reverse("admin:retention_outboxmessage_templates")

    r = admin_client.get(url, {"template": "email/throwaway"})

    assert r.status_code == 200
    assert r.context["chosen"].title == "A throwaway email"
    assert "Hello from the throwaway app." in r.context["message"].body_text


def test_the_apps_inline_is_on_the_customers_admin_page(throwaway, vip, admin_client):
    r = admin_client.get(reverse("admin:retention_customer_change", args=[vip.pk]))

    page = r.content.decode()
    assert "Throwaway enrolments" in page and "Accounting" in page


def test_a_second_ready_changes_nothing(throwaway):
    from django.apps import apps

    from retention.account import sections as page
    from retention.sales import admin as customer_admin

    before = [list(page.SECTIONS), list(pipeline_steps()), list(atrisk.REASONS),
              list(registry.REGISTERED), dict(links.PURPOSES), list(previews.PREVIEWS),
              list(customer_admin.CUSTOMER_INLINES)]
    apps.get_app_config("throwaway").ready()
    apps.get_app_config("retention").ready()

    assert [list(page.SECTIONS), list(pipeline_steps()), list(atrisk.REASONS),
            list(registry.REGISTERED), dict(links.PURPOSES), list(previews.PREVIEWS),
            list(customer_admin.CUSTOMER_INLINES)] == before


def pipeline_steps():
    from retention.nightly import pipeline

    return pipeline.STEPS


# What the registries refuse -------------------------------------------------------------------


def test_two_steps_of_one_name_are_refused(registries):
    with pytest.raises(ImproperlyConfigured, match="named 'customer summaries'"):
        register_step(Step(order=1, name="customer summaries", run=lambda night: ""))
    # … unless it is the very same step, registered again by a second ready()
    step = Step(order=5, name="again", run=str)
    register_step(step)
    register_step(step)


def test_figures_that_claim_a_counted_key_or_an_undefined_one_are_refused(registries):
    with pytest.raises(ImproperlyConfigured, match="counted by 'retention.referrals'"):
        register_figures(Figures(name="loyalty.referrals", keys=("referral_rate",),
                                 count=lambda scope: {"referral_rate": 1}))
    with pytest.raises(ImproperlyConfigured, match="needs a definition"):
        register_figures(Figures(name="x.y", keys=("points_issued",), count=dict))


def test_figures_may_take_over_a_key_they_name_in_replaces(registries, vip):
    register_figures(Figures(name="loyalty.referrals", keys=("referral_rate",),
                             count=lambda scope: {"referral_rate": Decimal("12.50")},
                             replaces=("retention.referrals",)))
    out = io.StringIO()
    call_command("compute_metrics", "--start", "2025-06-01", "--end", "2025-06-30", "--json",
                 stdout=out)

    assert json.loads(out.getvalue())["referral_rate"] == 12.5


def test_a_second_reason_purpose_or_preview_of_one_name_is_refused(registries):
    with pytest.raises(ImproperlyConfigured):
        atrisk.register_reason(atrisk.reason("overdue").__class__(
            "overdue", "Late", annotate=lambda as_of, rows: rows, present=None,
            describe=lambda row, facts: ""))
    with pytest.raises(ImproperlyConfigured):
        links.register_purpose(links.Purpose("account", days=1))
    with pytest.raises(ImproperlyConfigured):
        previews.register(previews.Preview("email/fresh_link", "Again", "transactional"))


def test_a_second_section_of_one_template_or_inline_in_two_places_is_refused(registries):
    from retention.account import Section, register_section
    from retention.mail.admin import MessagesInline
    from retention.sales.admin import CustomerInline, register_customer_inline

    with pytest.raises(ImproperlyConfigured):
        register_section(Section(order=99, template=sections.COURSES.template, context=dict))
    with pytest.raises(ImproperlyConfigured):
        register_customer_inline(CustomerInline(order=99, inline=MessagesInline))


def test_retention_and_the_programs_register_through_the_same_registries():
    from retention.nightly import pipeline
    from retention.sales import admin as customer_admin

    assert sections.COURSES in sections.SECTIONS
    names = [step.name for step in pipeline.STEPS]
    assert names[:2] == ["customer summaries", "loyalty points"]  # loyalty's, from its ready()
    assert names.index("loyalty reconciliation") < names.index("segments")
    assert [r.code for r in atrisk.reasons()][:5] == [
        "low_active", "overdue", "abandoned_course", "complaint", "membership"]
    assert {"retention.memberships", "retention.referrals", "value.predicted_clv"} <= {
        figures.name for figures in registry.active()}
    assert {"account", "preferences", "unsubscribe", "click"} <= set(links.PURPOSES)
    assert [part.order for part in customer_admin.CUSTOMER_INLINES][:6] == [20, 25, 30, 40, 50,
                                                                          60]
    assert previews.by_template("email/fresh_link") is not None
    # the surveys app's, from its own ready()
    assert "survey" in links.PURPOSES and previews.by_template("email/survey_invitation")
