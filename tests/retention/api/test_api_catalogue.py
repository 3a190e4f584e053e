"""Courses, bundles and the price history through the API."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from retention.sales import catalogue
from retention.sales.models import Bundle, Course, PriceChange
from tests.factories import BundleFactory, CourseFactory

pytestmark = pytest.mark.django_db

COURSES = "/api/v1/courses/"
BUNDLES = "/api/v1/bundles/"
PRICE_CHANGES = "/api/v1/price-changes/"


def course_body(code="py-101", **changes):
    body = {
        "code": code,
        "title": "Python for analysts",
        "price": "1200.00",
        "launched_on": "2025-02-01",
        "category": "data",
        "level": "beginner",
    }
    body.update(changes)
    return body


def test_same_course_sent_twice_is_stored_once(api_client):
    first = api_client.post(COURSES, course_body(), format="json")
    second = api_client.post(COURSES, course_body(), format="json")

    assert first.status_code == 201, first.json()
    assert second.status_code == 200
    assert Course.objects.count() == 1
    assert not PriceChange.objects.exists()


def test_follow_ons_are_given_and_shown_as_codes(api_client):
    CourseFactory(code="py-201")
    CourseFactory(code="sql-101")

    r = api_client.post(COURSES, course_body(follow_ons=["PY-201", "sql-101"]), format="json")

    assert r.status_code == 201, r.json()
    assert r.json()["follow_ons"] == ["py-201", "sql-101"]
    course = Course.objects.get(code="py-101")
    assert sorted(course.follow_ons.values_list("code", flat=True)) == ["py-201", "sql-101"]


def test_unknown_follow_on_and_own_follow_on_are_refused(api_client):
    CourseFactory(code="py-101")

    unknown = api_client.post(COURSES, course_body(follow_ons=["nope"]), format="json")
    own = api_client.patch(f"{COURSES}py-101/", {"follow_ons": ["py-101"]}, format="json")

    assert unknown.status_code == 400
    assert unknown.json() == {"follow_ons": ["unknown course code 'nope'"]}
    assert own.status_code == 400
    assert own.json() == {"follow_ons": ["A course cannot follow itself."]}


def test_price_update_through_the_api_records_a_price_change(api_client):
    CourseFactory(code="py-101", price=Decimal("1000.00"))

    r = api_client.patch(f"{COURSES}py-101/", {"price": "1250.00"}, format="json")

    assert r.status_code == 200, r.json()
    assert r.json()["price"] == "1250.00"
    change = PriceChange.objects.get()
    assert change.course.code == "py-101"
    assert (change.old_price, change.new_price) == (Decimal("1000.00"), Decimal("1250.00"))


def test_upsert_with_a_new_price_records_one_change_and_a_retry_none(api_client):
    CourseFactory(code="py-101", price=Decimal("1000.00"))

    for _ in range(2):
        r = api_client.post(COURSES, course_body(price="900.00"), format="json")
        assert r.status_code == 200

    change = PriceChange.objects.get()
    assert (change.old_price, change.new_price) == (Decimal("1000.00"), Decimal("900.00"))


def test_bundle_price_update_records_a_price_change(api_client):
    BundleFactory(code="data-pack", price=Decimal("2000.00")).courses.add(CourseFactory())

    r = api_client.patch(f"{BUNDLES}data-pack/", {"price": "1800.00"}, format="json")

    assert r.status_code == 200, r.json()
    change = PriceChange.objects.get()
    assert change.bundle.code == "data-pack"
    assert change.new_price == Decimal("1800.00")


@pytest.mark.parametrize("taken", ["py-101", "PY-101"])
def test_a_course_code_cannot_be_taken_by_a_bundle(api_client, taken):
    CourseFactory(code="py-101")

    r = api_client.post(BUNDLES, {
        "code": taken, "title": "Pack", "price": "10.00", "launched_on": "2025-01-01",
        "courses": ["py-101"],
    }, format="json")

    assert r.status_code == 400
    assert "py-101" in r.json()["code"][0]
    assert not Bundle.objects.exists()


def test_a_bundle_code_cannot_be_taken_by_a_course(api_client):
    BundleFactory(code="data-pack")

    r = api_client.post(COURSES, course_body(code="Data-Pack"), format="json")

    assert r.status_code == 400
    assert "data-pack" in r.json()["code"][0]
    assert not Course.objects.exists()


def test_codes_differing_only_in_case_are_refused(api_client):
    CourseFactory(code="py-101")

    r = api_client.post(COURSES, course_body(code="PY-101"), format="json")

    assert r.status_code == 400
    assert "case-blind" in r.json()["code"][0]
    assert Course.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": "-1.00"}, "price"),
        ({"price": "1.001"}, "price"),
        ({"code": "not a slug"}, "code"),
        ({"level": "expert"}, "level"),
        ({"launched_on": "2025-02-30"}, "launched_on"),
    ],
)
def test_bad_course_is_refused_with_the_field_named(api_client, changes, field):
    r = api_client.post(COURSES, course_body(**changes), format="json")

    assert r.status_code == 400
    assert field in r.json()
    assert not Course.objects.exists()


def test_bundle_is_created_with_its_courses_and_found_by_course(api_client):
    CourseFactory(code="py-101")
    CourseFactory(code="sql-101")
    BundleFactory(code="other").courses.add(CourseFactory(code="go-101"))

    r = api_client.post(BUNDLES, {
        "code": "data-pack", "title": "Data pack", "price": "2000.00",
        "launched_on": "2025-01-01", "courses": ["py-101", "sql-101"],
    }, format="json")
    found = api_client.get(BUNDLES, {"course": "SQL-101"})

    assert r.status_code == 201, r.json()
    assert r.json()["courses"] == ["py-101", "sql-101"]
    assert [bundle["code"] for bundle in found.json()["results"]] == ["data-pack"]


def test_bundle_needs_known_courses(api_client):
    r = api_client.post(BUNDLES, {
        "code": "data-pack", "title": "Data pack", "price": "2000.00",
        "launched_on": "2025-01-01", "courses": ["py-101"],
    }, format="json")

    assert r.status_code == 400
    assert r.json() == {"courses": ["unknown course code 'py-101'"]}


def test_price_changes_are_filtered_by_code_and_date(api_client, settings):
    settings.TIME_ZONE = "Africa/Johannesburg"
    course = CourseFactory(code="py-101", price=Decimal("100.00"))
    bundle = BundleFactory(code="data-pack", price=Decimal("300.00"))
    course.price = Decimal("120.00")
    catalogue.save_offering(course, changed_at=datetime(2025, 1, 31, 21, 0, tzinfo=UTC))
    bundle.price = Decimal("280.00")
    catalogue.save_offering(bundle, changed_at=datetime(2025, 1, 31, 23, 0, tzinfo=UTC))

    by_code = api_client.get(PRICE_CHANGES, {"code": "PY-101"}).json()["results"]
    in_january = api_client.get(PRICE_CHANGES, {"changed_before": "2025-01-31"}).json()["results"]
    bundles = api_client.get(PRICE_CHANGES, {"kind": "bundle"}).json()["results"]

    assert [(c["kind"], c["code"], c["old_price"], c["new_price"]) for c in by_code] == [
        ("course", "py-101", "100.00", "120.00")
    ]
    assert by_code[0]["change_percent"] == "20.00"
    assert [c["code"] for c in in_january] == ["py-101"]  # 23:00 UTC is 1 February there
    assert [c["code"] for c in bundles] == ["data-pack"]
