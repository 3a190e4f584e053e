"""Enrolments through the API: one per (customer_id, course), progress rules as 400s."""

from datetime import UTC, date, datetime

import pytest

from retention.sales.models import Enrolment
from tests.factories import CourseFactory, CustomerFactory, EnrolmentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/enrolments/"


@pytest.fixture
def customer():
    return CustomerFactory(external_id="C-1")


@pytest.fixture
def course():
    return CourseFactory(code="py-101")


def enrolment_body(**changes):
    body = {"customer_id": "C-1", "course": "py-101", "started_on": "2025-02-01",
            "progress_percent": 40}
    body.update(changes)
    return body


def test_same_enrolment_sent_twice_is_stored_once(api_client, customer, course):
    first = api_client.post(URL, enrolment_body(), format="json")
    second = api_client.post(URL, enrolment_body(), format="json")

    assert first.status_code == 201, first.json()
    assert second.status_code == 200, second.json()
    assert Enrolment.objects.count() == 1
    assert second.json()["customer_id"] == "C-1"
    assert second.json()["course"] == "py-101"


def test_progress_is_updated_by_customer_and_course(api_client, customer, course):
    api_client.post(URL, enrolment_body(), format="json")

    r = api_client.post(URL, enrolment_body(course="PY-101", progress_percent=100,
                                            completed_on="2025-03-01"), format="json")

    assert r.status_code == 200, r.json()
    assert r.json()["completed"] is True
    enrolment = Enrolment.objects.get()
    assert (enrolment.progress_percent, enrolment.completed_on) == (100, date(2025, 3, 1))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"customer_id": "C-404"}, "customer_id", "unknown customer_id 'C-404'"),
        ({"course": "cobol-1"}, "course", "unknown course code 'cobol-1'"),
        ({"progress_percent": 101}, "progress_percent", "less than or equal to 100"),
        ({"progress_percent": -1}, "progress_percent", "greater than or equal to 0"),
        ({"completed_on": "2025-03-01"}, "completed_on", "100 % progress; this one has 40 %"),
        ({"progress_percent": 100, "completed_on": "2025-01-31"}, "completed_on",
         "cannot be completed (2025-01-31) before it starts (2025-02-01)"),
        ({"source": "gift"}, "source", "not a valid choice"),
        ({"last_activity_at": "3000-01-01T00:00:00Z"}, "last_activity_at", "year"),
    ],
)
def test_bad_enrolment_is_refused_with_the_field_named(api_client, customer, course, changes,
                                                       field, message):
    r = api_client.post(URL, enrolment_body(**changes), format="json")

    assert r.status_code == 400
    assert message in r.json()[field][0], r.json()
    assert not Enrolment.objects.exists()


def test_detail_is_addressed_by_customer_and_course(api_client, customer, course):
    EnrolmentFactory(customer=customer, course=course, progress_percent=100)

    fetched = api_client.get(f"{URL}C-1/py-101/")
    patched = api_client.patch(f"{URL}C-1/py-101/", {"completed_on": "2025-04-01"}, format="json")

    assert fetched.status_code == 200
    assert fetched.json()["progress_percent"] == 100
    assert patched.status_code == 200, patched.json()
    assert Enrolment.objects.get().completed_on == date(2025, 4, 1)
    assert api_client.get(f"{URL}C-1/cobol-1/").status_code == 404
    assert api_client.get(f"{URL}C-404/py-101/").status_code == 404


def test_patch_checks_completion_against_the_stored_progress(api_client, customer, course):
    EnrolmentFactory(customer=customer, course=course, progress_percent=60)

    r = api_client.patch(f"{URL}C-1/py-101/", {"completed_on": "2025-04-01"}, format="json")

    assert r.status_code == 400
    assert "completed_on" in r.json()
    assert Enrolment.objects.get().completed_on is None


def test_put_creates_at_the_url_and_the_url_key_wins(api_client, customer, course):
    CustomerFactory(external_id="C-2")

    r = api_client.put(f"{URL}C-1/py-101/", enrolment_body(customer_id="C-2"), format="json")

    assert r.status_code == 201, r.json()
    assert Enrolment.objects.get().customer == customer


def test_put_with_an_unknown_course_in_the_url_is_a_400(api_client, customer):
    r = api_client.put(f"{URL}C-1/cobol-1/", enrolment_body(), format="json")

    assert r.status_code == 400
    assert r.json() == {"course": ["unknown course code 'cobol-1'"]}


def keys(response):
    assert response.status_code == 200, response.json()
    return sorted((e["customer_id"], e["course"]) for e in response.json()["results"])


def test_enrolments_are_filtered(api_client, customer, course):
    other_course = CourseFactory(code="sql-101")
    EnrolmentFactory(customer=customer, course=course, progress_percent=100,
                     completed_on=date(2025, 3, 1), started_on=date(2025, 1, 10))
    EnrolmentFactory(customer=customer, course=other_course, started_on=date(2025, 2, 10),
                     last_activity_at=datetime(2025, 2, 20, tzinfo=UTC))
    EnrolmentFactory(customer__external_id="C-2", course=course, started_on=date(2025, 3, 10))

    assert keys(api_client.get(URL, {"completed": "true"})) == [("C-1", "py-101")]
    assert keys(api_client.get(URL, {"completed": "false"})) == [("C-1", "sql-101"),
                                                                 ("C-2", "py-101")]
    assert keys(api_client.get(URL, {"course": "PY-101"})) == [("C-1", "py-101"), ("C-2", "py-101")]
    assert keys(api_client.get(URL, {"customer_id": "C-2"})) == [("C-2", "py-101")]
    assert keys(api_client.get(URL, {"started_after": "2025-02-01",
                                     "started_before": "2025-02-28"})) == [("C-1", "sql-101")]
    assert keys(api_client.get(URL, {"last_activity_after": "2025-02-20"})) == [("C-1", "sql-101")]
    assert keys(api_client.get(URL, {"completed_before": "2025-03-01"})) == [("C-1", "py-101")]
