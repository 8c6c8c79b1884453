from __future__ import annotations

import httpx


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_unknown_route_has_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_missing_token_is_401_with_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_vietnamese_messages_on_request(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me", headers={"Accept-Language": "vi-VN"})
    assert response.json()["error"]["message"].startswith("Chưa đăng nhập")
