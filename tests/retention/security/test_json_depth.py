"""Deeply nested JSON from a platform token is refused with a 400, not a server error."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/v1/customers/", "/api/v1/orders/", "/api/v1/orders/bulk/",
                                 "/api/v1/customers/C-1/"])
@pytest.mark.parametrize("depth", [40, 2_000, 100_000])
def test_deeply_nested_json_is_refused_with_a_clear_error(api_client, url, depth):
    body = "[" * depth + "]" * depth
    method = api_client.put if url.endswith("C-1/") else api_client.post
    response = method(url, body, content_type="application/json")

    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["detail"]


def test_ordinary_nesting_still_works(api_client):
    response = api_client.post("/api/v1/customers/", {"customer_id": "C-1", "email": "a@example.com",
                                                       "name": "Ann"}, format="json")
    assert response.status_code == 201
    mixed = '{"customer_id": "C-2", "x": ' + '{"a": [' * 10 + "1" + "]}" * 10 + "}"
    assert api_client.post("/api/v1/customers/", mixed,
                           content_type="application/json").status_code == 201
