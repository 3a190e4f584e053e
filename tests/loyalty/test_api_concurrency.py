"""Redemptions racing through the API: for the last points of a balance, for the last units of a
reward's stock, and with the same key. Exactly the affordable ones succeed, the rest are
refused with their code, and the ledger still adds up.

PostgreSQL only: SQLite lets one writer at a time, so there is no overlap to test.
"""

import threading

import pytest
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from loyalty import ledger, reconcile
from loyalty.models import Account, Entry, Redemption, Reward
from tests.factories import CustomerFactory
from tests.loyalty.helpers import reward

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs concurrent writers (PostgreSQL)"),
]

URL = "/api/v1/loyalty/redemptions/"


def race(token: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """POST each body at the same moment, each from its own thread, client and connection;
    return (status, body) of each answer."""
    start = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def call(index: int, body: dict):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            start.wait(timeout=60)
            r = client.post(URL, body, format="json")
            answers[index] = (r.status_code, r.json())
        except Exception as exc:  # noqa: BLE001  (reported by the assertions)
            answers[index] = (None, repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return answers


@pytest.fixture
def token(platform_user):
    return Token.objects.create(user=platform_user).key


def statuses(answers) -> list:
    return sorted(status for status, _body in answers)


def assert_sound():
    assert not Account.objects.filter(available__lt=0).exists()
    assert Redemption.objects.count() == Entry.objects.filter(kind=Entry.Kind.REDEEM).count()
    assert reconcile.is_sound(reconcile.reconcile())


def test_fifty_redemptions_racing_for_one_balance_spend_only_what_it_holds(token):
    customer = CustomerFactory(external_id="C-1")
    ledger.adjust(customer, 1000, reason="Gift", key="gift-0001", by="test")
    reward(points=150)  # 6 affordable, 100 points left

    answers = race(token, [{"customer": "C-1", "reward": "ten-off", "key": f"race-{i:04d}"}
                           for i in range(50)])

    assert statuses(answers) == [201] * 6 + [409] * 44, answers
    assert {body["code"] for status, body in answers if status == 409} == {"insufficient_points"}
    assert sorted(body["available_after"] for status, body in answers if status == 201) == [
        100, 250, 400, 550, 700, 850]
    assert Account.objects.get().available == 100
    assert Redemption.objects.count() == 6
    assert_sound()


def test_many_customers_racing_for_the_last_units_of_stock_get_only_those(token):
    for i in range(30):
        customer = CustomerFactory(external_id=f"C-{i}")
        ledger.adjust(customer, 500, reason="Gift", key=f"gift-{i:04d}", by="test")
    reward(points=100, stock=4)

    answers = race(token, [{"customer": f"C-{i}", "reward": "ten-off", "key": f"race-{i:04d}"}
                           for i in range(30)])

    assert statuses(answers) == [201] * 4 + [409] * 26, answers
    assert {body["code"] for status, body in answers if status == 409} == {"out_of_stock"}
    assert Reward.objects.get().stock == 0
    assert Redemption.objects.count() == 4
    assert sorted(Account.objects.values_list("available", flat=True)) == [400] * 4 + [500] * 26
    assert_sound()


def test_ten_calls_with_the_same_key_redeem_once(token):
    customer = CustomerFactory(external_id="C-1")
    ledger.adjust(customer, 1000, reason="Gift", key="gift-0001", by="test")
    reward(points=100)

    answers = race(token, [{"customer": "C-1", "reward": "ten-off", "key": "same-key-1"}] * 10)

    assert statuses(answers) == [200] * 9 + [201], answers
    assert len({body["id"] for _status, body in answers}) == 1
    assert len({body["coupon_code"] for _status, body in answers}) == 1
    assert Redemption.objects.count() == 1
    assert Account.objects.get().available == 900
    assert_sound()


def test_ten_calls_with_the_same_key_for_a_customer_without_an_account_redeem_none(token):
    CustomerFactory(external_id="C-1")
    reward(points=100)

    answers = race(token, [{"customer": "C-1", "reward": "ten-off", "key": "same-key-1"}] * 10)

    assert statuses(answers) == [409] * 10, answers
    assert not Redemption.objects.exists()
    assert_sound()
