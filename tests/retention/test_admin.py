"""The staff admin for the core domain: fast change lists, search, and writes that keep
the price history and the customers' cached order summaries right."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from retention.sales import summaries
from retention.sales.models import Course, Customer, Order, PriceChange
from retention.value.models import AtRisk, ClvFit, CustomerPrediction
from tests.factories import (
    BundleFactory,
    CourseFactory,
    CustomerFactory,
    EnrolmentFactory,
    MembershipFactory,
    OrderFactory,
    OrderLineFactory,
    OrganisationFactory,
    SupportTicketFactory,
)

pytestmark = pytest.mark.django_db


def changelist(model: str) -> str:
    return reverse(f"admin:retention_{model}_changelist")


def make_customers(n):
    customers = CustomerFactory.create_batch(n, acquisition_source="organic")
    for customer in customers:
        OrderFactory(customer=customer)
    summaries.refresh()
    return customers[-1].external_id


def make_orders(n):
    # Each order with its own customer, so a per-row customer query would show.
    return OrderFactory.create_batch(n)[-1].external_id


def make_courses(n):
    return CourseFactory.create_batch(n)[-1].code


def make_bundles(n):
    bundles = BundleFactory.create_batch(n)
    for bundle in bundles:
        bundle.courses.add(CourseFactory(), CourseFactory())
    return bundles[-1].code


def make_price_changes(n):
    changes = [
        PriceChange.objects.create(
            course=CourseFactory(), old_price=Decimal("100.00"), new_price=Decimal("120.00"),
            changed_at=datetime(2025, 3, 1, tzinfo=UTC),
        )
        for _ in range(n)
    ]
    return changes[-1].course.code


def make_memberships(n):
    return MembershipFactory.create_batch(n)[-1].external_id


def make_enrolments(n):
    return str(EnrolmentFactory.create_batch(n)[-1].customer)


def make_tickets(n):
    return SupportTicketFactory.create_batch(n)[-1].external_id


# Every change list runs: the session, the user, the paginator's COUNT of the
# filtered rows and the page's rows with their related rows joined in. On top:
CHANGE_LISTS = [
    # + the distinct acquisition sources for their filter (no second COUNT of all rows)
    pytest.param("customer", make_customers, 5, id="customer"),
    # + the date hierarchy's first/last order and its days
    pytest.param("order", make_orders, 6, id="order"),
    # + the COUNT of all courses ("N total") and the distinct categories for their filter
    pytest.param("course", make_courses, 6, id="course"),
    # + the COUNT of all bundles; the course count is annotated on the page's query
    pytest.param("bundle", make_bundles, 5, id="bundle"),
    # + the COUNT of all rows and the date hierarchy's first/last change and its days
    pytest.param("pricechange", make_price_changes, 7, id="pricechange"),
    # + the date hierarchy's two queries and the distinct plans for their filter
    pytest.param("membership", make_memberships, 7, id="membership"),
    # + the date hierarchy's two queries and the courses for their filter
    pytest.param("enrolment", make_enrolments, 7, id="enrolment"),
    # + the date hierarchy's two queries
    pytest.param("supportticket", make_tickets, 6, id="supportticket"),
]


@pytest.mark.parametrize("n", [1, 30])
@pytest.mark.parametrize(("model", "make", "queries"), CHANGE_LISTS)
def test_change_list_queries_do_not_grow_with_rows(
    n, model, make, queries, admin_client, django_assert_max_num_queries
):
    last = make(n)

    with django_assert_max_num_queries(queries):
        r = admin_client.get(changelist(model))

    assert r.status_code == 200
    assert r.context["cl"].result_count == n
    assert last in r.content.decode()


def make_course_with_follow_on():
    course = CourseFactory()
    course.follow_ons.add(CourseFactory())
    return course


def make_bundle_with_course():
    bundle = BundleFactory()
    bundle.courses.add(CourseFactory())
    return bundle


@pytest.mark.parametrize(
    ("model", "make"),
    [
        pytest.param(model, make, id=model)
        for model, make in [
            ("customer", lambda: OrderFactory().customer),
            ("course", make_course_with_follow_on),
            ("bundle", make_bundle_with_course),
            ("order", lambda: OrderLineFactory().order),
            ("membership", MembershipFactory),
            ("enrolment", EnrolmentFactory),
            ("supportticket", SupportTicketFactory),
        ]
    ],
)
def test_add_and_change_pages_render(model, make, admin_client):
    obj = make()

    added = admin_client.get(reverse(f"admin:retention_{model}_add"))
    changed = admin_client.get(reverse(f"admin:retention_{model}_change", args=[obj.pk]))

    assert (added.status_code, changed.status_code) == (200, 200)


def test_customer_list_shows_cached_order_summary(admin_client):
    customer = CustomerFactory(external_id="cust-summary", email="ada@example.com")
    OrderFactory(customer=customer, amount=Decimal("120.00"),
                 ordered_at=datetime(2025, 1, 5, 10, tzinfo=UTC))
    OrderFactory(customer=customer, amount=Decimal("30.50"),
                 ordered_at=datetime(2025, 2, 7, 10, tzinfo=UTC))
    summaries.refresh()

    r = admin_client.get(changelist("customer"))

    row = r.context["cl"].result_list[0]
    assert (row.order_count, row.total_spent) == (2, Decimal("150.50"))
    html = r.content.decode()
    assert '<td class="field-orders">2</td>' in html
    assert '<td class="field-spent">150.50</td>' in html


def test_customer_list_does_not_count_every_customer_twice(admin_client):
    CustomerFactory.create_batch(3)

    r = admin_client.get(changelist("customer"), {"q": "nobody-matches-this"})

    assert r.context["cl"].result_count == 0
    assert r.context["cl"].full_result_count is None


@pytest.mark.parametrize(
    "term",
    ["buyer@acme.example", "Thandi Nkosi", "Acme Learning", "acme-0042"],
    ids=["email", "name", "organisation name", "external id"],
)
def test_customer_search_finds_by_email_name_organisation_and_id(term, admin_client):
    wanted = OrganisationFactory(
        external_id="acme-0042",
        email="buyer@acme.example",
        name="Thandi Nkosi",
        organisation_name="Acme Learning Ltd",
    )
    CustomerFactory(external_id="other-0001", email="someone@else.example", name="Sipho Dube")

    r = admin_client.get(changelist("customer"), {"q": term})

    assert r.status_code == 200
    assert list(r.context["cl"].result_list) == [wanted]


def test_customer_filter_has_ordered_uses_cached_order_count(admin_client):
    buyer = CustomerFactory()
    OrderFactory(customer=buyer)
    never = CustomerFactory()
    refunded_only = CustomerFactory()
    OrderFactory(customer=refunded_only, status=Order.Status.REFUNDED)
    summaries.refresh()

    yes = admin_client.get(changelist("customer"), {"has_ordered": "yes"})
    no = admin_client.get(changelist("customer"), {"has_ordered": "no"})

    assert list(yes.context["cl"].result_list) == [buyer]
    assert set(no.context["cl"].result_list) == {never, refunded_only}


def test_customer_page_shows_latest_orders_and_links_to_the_rest(
    admin_client, django_assert_max_num_queries
):
    customer = CustomerFactory()
    orders = [
        OrderFactory(customer=customer, external_id=f"o-{day:02d}",
                     ordered_at=datetime(2025, 1, day, tzinfo=UTC))
        for day in range(1, 26)
    ]

    # session, user, customer, its 20 latest orders, the order content type (for
    # the links; cached after first use), the COUNT of all its orders; its email
    # preferences, latest consent changes and latest emails; its latest prediction
    # (with its fit) and its latest at-risk row (and its open follow-up, when at risk)
    with django_assert_max_num_queries(11):
        r = admin_client.get(reverse("admin:retention_customer_change", args=[customer.pk]))

    assert r.status_code == 200
    formset = r.context["inline_admin_formsets"][0].formset
    shown = [form.instance for form in formset.forms]
    assert shown == orders[::-1][:20]  # the 20 latest, newest first
    html = r.content.decode()
    assert "o-25" in html and "o-05" not in html
    assert f"{changelist('order')}?customer__id__exact={customer.pk}" in html
    assert "All 25 orders of this customer" in html
    OrderFactory()  # someone else's
    every = admin_client.get(changelist("order"), {"customer__id__exact": customer.pk})
    assert every.context["cl"].result_count == 25


def test_the_customer_page_shows_the_latest_prediction_and_at_risk_reasons(admin_client):
    """The value area's parts of the customer's page, registered as inlines."""
    customer = CustomerFactory()
    fit = ClvFit.objects.create(
        as_of=date(2025, 6, 30), purpose=ClvFit.Purpose.NIGHTLY, customers=500,
        repeat_customers=120, purchases_method="model", spend_method="model",
        monthly_discount=Decimal("0.0100"))
    for day, value in ((date(2025, 6, 29), "10.00"), (date(2025, 6, 30), "180.00")):
        CustomerPrediction.objects.create(
            fit=fit, as_of=day, customer=customer, frequency=2, recency_weeks=20.0,
            age_weeks=40.0, probability_active=0.62, expected_purchases_12m=2.0,
            expected_value_per_purchase=Decimal("100.00"), predicted_value_12m=Decimal(value),
            value_at_risk=Decimal("20.00"), no_purchase_90d=0.4)
    AtRisk.objects.create(
        as_of=date(2025, 6, 30), customer=customer, score=0.71, value_at_risk=Decimal("20.00"),
        predicted_value_12m=Decimal("180.00"), probability_active=0.62, days_since_last=90,
        usual_gap_days=30, overdue=True, reason_count=1)

    r = admin_client.get(reverse("admin:retention_customer_change", args=[customer.pk]))

    html = r.content.decode()
    assert "180.00" in html and ">10.00<" not in html  # the latest prediction only
    assert "62 %" in html and "purchases: BG/NBD; spend: Gamma-Gamma" in html
    assert "Overdue: 90 days since the last order; usually every 30 days" in html
    assert "71 %" in html


def customer_form(customer: Customer, **changes) -> dict:
    """The POST a browser sends from the customer change form, with `changes` applied."""
    data = {
        "external_id": customer.external_id,
        "customer_type": customer.customer_type,
        "name": customer.name,
        "email": customer.email,
        "organisation_name": customer.organisation_name,
        "sector": customer.sector,
        "acquisition_source": customer.acquisition_source,
        "referred_by": "",
        "signed_up_at_0": "",
        "signed_up_at_1": "",
        "birth_date": "",
        # The read-only inlines (latest orders, preferences, consents, emails, prediction,
        # at-risk row, loyalty account): nothing to submit.
        **{f"{prefix}-{count}": "0" for prefix in ("orders", "preferences", "consents", "messages",
                                                   "predictions", "risks", "loyalty_account")
           for count in ("TOTAL_FORMS", "INITIAL_FORMS")},
    }
    data.update(changes)
    return data


def test_customer_edit_in_admin_keeps_order_summary(admin_client):
    customer = CustomerFactory(name="Old name")
    OrderFactory(customer=customer, amount=Decimal("80.00"))
    summaries.refresh()

    r = admin_client.post(
        reverse("admin:retention_customer_change", args=[customer.pk]),
        customer_form(customer, name="New name"),
    )

    assert r.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "New name"
    assert (customer.order_count, customer.total_spent) == (1, Decimal("80.00"))


def test_customer_edit_does_not_undo_summary_refreshed_while_page_was_open(rf, admin_user):
    customer = CustomerFactory(name="Old name")
    loaded = Customer.objects.get(pk=customer.pk)  # the admin loads the customer...
    OrderFactory(customer=customer, amount=Decimal("80.00"))  # ...an import adds an order
    summaries.refresh()
    model_admin = admin.site._registry[Customer]
    request = rf.post("/")
    request.user = admin_user
    form = model_admin.get_form(request, loaded, change=True)(
        customer_form(loaded, name="New name"), instance=loaded
    )
    assert form.is_valid(), form.errors

    model_admin.save_model(request, form.save(commit=False), form, change=True)

    customer.refresh_from_db()
    assert customer.name == "New name"
    assert (customer.order_count, customer.total_spent) == (1, Decimal("80.00"))


# Catalogue --------------------------------------------------------------------------------------


def course_form(course: Course, **changes) -> dict:
    """The POST a browser sends from the course change form, with `changes` applied."""
    data = {
        "code": course.code,
        "title": course.title,
        "price": str(course.price),
        "category": course.category,
        "level": course.level,
        "launched_on": course.launched_on.isoformat(),
        "is_active": "on" if course.is_active else "",
        # The read-only price history inline: nothing to submit.
        "price_changes-TOTAL_FORMS": "0",
        "price_changes-INITIAL_FORMS": "0",
        "_continue": "Save and continue editing",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_course_price_change_in_admin_records_price_history(admin_client, admin_user):
    course = CourseFactory(code="sql-basics", price=Decimal("100.00"))
    url = reverse("admin:retention_course_change", args=[course.pk])

    r = admin_client.post(url, course_form(course, price="120.00"), follow=True)

    assert r.status_code == 200
    assert r.redirect_chain[-1][0] == url
    course.refresh_from_db()
    assert course.price == Decimal("120.00")
    change = PriceChange.objects.get()
    assert (change.course, change.bundle) == (course, None)
    assert (change.old_price, change.new_price) == (Decimal("100.00"), Decimal("120.00"))
    assert change.note == f"admin: {admin_user.username}"
    # The page it returns to shows the new row of history.
    (history,) = r.context["inline_admin_formsets"]
    assert [form.instance for form in history.formset.forms] == [change]
    html = r.content.decode()
    assert "Price history" in html
    assert "<p>+20.00 %</p>" in html


def test_course_saved_with_same_price_records_no_price_change(admin_client):
    course = CourseFactory(price=Decimal("100.00"), title="Old title")
    url = reverse("admin:retention_course_change", args=[course.pk])

    r = admin_client.post(url, course_form(course, title="New title"))

    assert r.status_code == 302
    course.refresh_from_db()
    assert (course.title, course.price) == ("New title", Decimal("100.00"))
    assert not PriceChange.objects.exists()


def test_bundle_price_change_in_admin_records_price_history(admin_client):
    courses = CourseFactory.create_batch(2)
    bundle = BundleFactory(price=Decimal("250.00"))
    bundle.courses.set(courses)
    url = reverse("admin:retention_bundle_change", args=[bundle.pk])

    r = admin_client.post(url, {
        "code": bundle.code,
        "title": bundle.title,
        "price": "200.00",
        "launched_on": "2024-01-01",
        "is_active": "on",
        "courses": [c.pk for c in courses],
        "price_changes-TOTAL_FORMS": "0",
        "price_changes-INITIAL_FORMS": "0",
    })

    assert r.status_code == 302
    change = PriceChange.objects.get()
    assert (change.bundle, change.course) == (bundle, None)
    assert (change.old_price, change.new_price) == (Decimal("250.00"), Decimal("200.00"))
    assert change.change_percent == Decimal("-20.00")


def test_price_change_admin_refuses_add_change_and_delete(admin_client):
    change = PriceChange.objects.create(
        course=CourseFactory(), old_price=Decimal("100.00"), new_price=Decimal("120.00"),
        changed_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    change_url = reverse("admin:retention_pricechange_change", args=[change.pk])

    added = admin_client.post(reverse("admin:retention_pricechange_add"), {
        "course": change.course_id, "old_price": "1.00", "new_price": "2.00",
        "changed_at_0": "2025-04-01", "changed_at_1": "00:00:00",
    })
    changed = admin_client.post(change_url, {"old_price": "1.00", "new_price": "2.00"})
    deleted = admin_client.post(
        reverse("admin:retention_pricechange_delete", args=[change.pk]), {"post": "yes"}
    )
    viewed = admin_client.get(change_url)

    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    change.refresh_from_db()
    assert (change.old_price, change.new_price) == (Decimal("100.00"), Decimal("120.00"))
    assert PriceChange.objects.count() == 1
    # Staff can still read it, without a save button.
    assert viewed.status_code == 200
    assert 'name="_save"' not in viewed.content.decode()


# Orders -----------------------------------------------------------------------------------------


def order_form(order: Order, **changes) -> dict:
    """The POST a browser sends from the order change form, with `changes` applied."""
    ordered_at = timezone.localtime(order.ordered_at)
    data = {
        "external_id": order.external_id,
        "customer": str(order.customer_id),
        "ordered_at_0": ordered_at.date().isoformat(),
        "ordered_at_1": ordered_at.time().isoformat(),
        "status": order.status,
        "amount": str(order.amount),
        "currency": order.currency,
        "coupon_code": order.coupon_code,
        # No line forms: the order's lines stay as they are.
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def test_order_amount_edit_updates_customer_total_and_blanks_fingerprint(admin_client):
    customer = CustomerFactory()
    order = OrderFactory(customer=customer, amount=Decimal("100.00"), fingerprint="a" * 32)
    OrderLineFactory(order=order, price=Decimal("100.00"))
    OrderFactory(customer=customer, amount=Decimal("50.00"))
    summaries.refresh()

    r = admin_client.post(
        reverse("admin:retention_order_change", args=[order.pk]),
        order_form(order, amount="80.00"),
    )

    assert r.status_code == 302
    order.refresh_from_db()
    assert order.amount == Decimal("80.00")
    # Blank: the next import of this order from the platform rewrites it.
    assert order.fingerprint == ""
    assert order.lines.count() == 1
    customer.refresh_from_db()
    assert (customer.order_count, customer.total_spent) == (2, Decimal("130.00"))
    assert not summaries.stale().exists()


def test_order_line_edit_blanks_fingerprint(admin_client):
    order = OrderFactory(fingerprint="b" * 32)
    line = OrderLineFactory(order=order, position=1, price=Decimal("100.00"))
    data = order_form(order)
    data.update({
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-0-id": str(line.pk),
        "lines-0-order": str(order.pk),
        "lines-0-position": "1",
        "lines-0-course": str(line.course_id),
        "lines-0-price": "90.00",
    })

    r = admin_client.post(reverse("admin:retention_order_change", args=[order.pk]), data)

    assert r.status_code == 302
    line.refresh_from_db()
    order.refresh_from_db()
    assert line.price == Decimal("90.00")
    assert order.fingerprint == ""


def test_order_moved_to_other_customer_refreshes_both_summaries(admin_client):
    before, after = CustomerFactory(), CustomerFactory()
    order = OrderFactory(customer=before, amount=Decimal("100.00"))
    summaries.refresh()

    r = admin_client.post(
        reverse("admin:retention_order_change", args=[order.pk]),
        order_form(order, customer=str(after.pk)),
    )

    assert r.status_code == 302
    before.refresh_from_db()
    after.refresh_from_db()
    assert (before.order_count, before.total_spent) == (0, Decimal("0"))
    assert (after.order_count, after.total_spent) == (1, Decimal("100.00"))


def test_order_added_in_admin_counts_in_customer_summary(admin_client):
    customer = CustomerFactory()

    r = admin_client.post(reverse("admin:retention_order_add"), {
        "external_id": "manual-1",
        "customer": str(customer.pk),
        "ordered_at_0": "2025-05-01",
        "ordered_at_1": "10:00:00",
        "status": "paid",
        "amount": "75.00",
        "currency": "ZAR",
        "coupon_code": "",
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
    })

    assert r.status_code == 302
    assert Order.objects.get(external_id="manual-1").fingerprint == ""
    customer.refresh_from_db()
    assert (customer.order_count, customer.total_spent) == (1, Decimal("75.00"))


def test_order_deleted_in_admin_refreshes_customer_summary(admin_client):
    customer = CustomerFactory()
    gone = OrderFactory(customer=customer, amount=Decimal("100.00"))
    OrderLineFactory(order=gone)
    OrderFactory(customer=customer, amount=Decimal("40.00"))
    summaries.refresh()

    r = admin_client.post(
        reverse("admin:retention_order_delete", args=[gone.pk]), {"post": "yes"}
    )

    assert r.status_code == 302
    assert not Order.objects.filter(pk=gone.pk).exists()
    customer.refresh_from_db()
    assert (customer.order_count, customer.total_spent) == (1, Decimal("40.00"))


def test_orders_deleted_with_action_refresh_every_customer_summary(admin_client):
    first, second = CustomerFactory(), CustomerFactory()
    doomed = [OrderFactory(customer=first), OrderFactory(customer=second)]
    kept = OrderFactory(customer=second, amount=Decimal("60.00"))
    summaries.refresh()

    r = admin_client.post(changelist("order"), {
        "action": "delete_selected",
        "_selected_action": [o.pk for o in doomed],
        "post": "yes",
    })

    assert r.status_code == 302
    assert list(Order.objects.all()) == [kept]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.order_count, first.total_spent) == (0, Decimal("0"))
    assert (second.order_count, second.total_spent) == (1, Decimal("60.00"))
    assert not summaries.stale().exists()


def test_order_currency_filter_splits_business_currency_from_others(admin_client):
    ours = OrderFactory(currency="ZAR")
    other = OrderFactory(currency="USD")

    zar = admin_client.get(changelist("order"), {"currency": "ZAR"})
    others = admin_client.get(changelist("order"), {"currency": "other"})

    assert list(zar.context["cl"].result_list) == [ours]
    assert list(others.context["cl"].result_list) == [other]


def test_order_search_finds_by_order_id_customer_id_and_email(admin_client):
    customer = CustomerFactory(external_id="cust-777", email="lerato@example.com")
    wanted = OrderFactory(external_id="ord-31337", customer=customer)
    OrderFactory(external_id="ord-00001")

    found = [
        list(admin_client.get(changelist("order"), {"q": term}).context["cl"].result_list)
        for term in ("ord-31337", "cust-777", "lerato@example.com")
    ]

    assert found == [[wanted]] * 3


# The rest ---------------------------------------------------------------------------------------


def test_membership_list_shows_monthly_revenue_of_yearly_plan(admin_client):
    MembershipFactory(interval="year", price=Decimal("1200.00"))

    r = admin_client.get(changelist("membership"), {"o": "6"})  # sorted by MRR

    assert r.status_code == 200
    assert '<td class="field-monthly_revenue">100.00</td>' in r.content.decode()


def test_ticket_list_sorts_by_first_response_hours(admin_client):
    opened = datetime(2025, 1, 1, 9, tzinfo=UTC)
    slow = SupportTicketFactory(opened_at=opened,
                                first_response_at=datetime(2025, 1, 2, 9, tzinfo=UTC))
    fast = SupportTicketFactory(opened_at=opened,
                                first_response_at=datetime(2025, 1, 1, 10, tzinfo=UTC))

    # first_response_hours is the 8th column of list_display
    r = admin_client.get(changelist("supportticket"), {"o": "8"})

    assert list(r.context["cl"].result_list) == [fast, slow]
    html = r.content.decode()
    assert '<td class="field-first_response_hours">1.0</td>' in html
    assert '<td class="field-first_response_hours">24.0</td>' in html


def test_admin_pages_carry_the_site_name(admin_client):
    r = admin_client.get(reverse("admin:index"))

    assert admin.site.site_header == "Course retention"
    assert "Course retention" in r.content.decode()


def test_the_target_list_shows_each_targets_status(admin_client):
    from retention.figures import targets

    targets.load_plan(2025, 3)

    response = admin_client.get("/admin/retention/target/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "retention_rate" in page and "2025 Q3" in page
    assert "no data" in page  # an empty database: every ratio is over nothing


def test_the_admin_index_groups_the_tables_by_what_staff_do(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    groups = ["Customers and orders", "Acting on customers at risk", "Email",
              "Targets and alerts", "Technical: stored figures, change log and nightly runs"]
    positions = [page.index(f">{title}<") for title in groups]
    assert positions == sorted(positions)
    technical = page[positions[-1]:]
    for table in ("Metric snapshots", "Stored reports", "Data changes", "Nightly runs"):
        assert table in technical[:technical.index("</table>")]
    customers = page[positions[0]:positions[1]]
    assert "Customers" in customers and "Metric snapshots" not in customers
    assert ">Course retention<" in page  # the site's name
