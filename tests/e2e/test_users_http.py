"""Profiles, addresses, roles and seller approval, admin user management, seller reports."""

from __future__ import annotations

from tests.support.accounts import admin, login, register, verified_user, wait

ADDRESS = {
    "name": "王小明",
    "phone": "0912345678",
    "street": "信義路五段7號",
    "city": "台北市",
    "district": "信義區",
    "postalCode": "110",
    "country": "TW",
}


def test_me_can_be_read_and_patched(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    r = client.patch(
        "/api/users/me",
        json={"displayName": "小明", "phone": "+886 912 345 678"},
        headers=user.auth,
    )
    assert r.status_code == 200
    position = r.headers["X-Event-Position"]
    me = client.get("/api/users/me", headers={**user.auth, "X-Min-Position": position}).json()
    assert me["displayName"] == "小明" and me["phone"] == "+886 912 345 678"
    assert me["email"] == user.email and me["role"] == "buyer"
    assert (
        client.patch(
            "/api/users/me", json={"email": "x@example.com"}, headers=user.auth
        ).status_code
        == 400
    )


def test_addresses_are_saved_listed_and_deleted_only_by_their_owner(make_client) -> None:
    client = make_client()
    owner = login(client, register(client))
    other = login(client, register(client))
    r = client.post("/api/users/me/addresses", json=ADDRESS, headers=owner.auth)
    assert r.status_code == 201
    address_id = r.json()["addressId"]
    assert r.json()["postalCode"] == "110"
    wait(client)
    listed = client.get("/api/users/me/addresses", headers=owner.auth).json()["addresses"]
    assert [a["addressId"] for a in listed] == [address_id]
    assert listed[0]["city"] == "台北市"
    assert client.get("/api/users/me/addresses", headers=other.auth).json()["addresses"] == []
    r = client.delete(f"/api/users/me/addresses/{address_id}", headers=other.auth)
    assert r.status_code == 404
    assert (
        client.delete(f"/api/users/me/addresses/{address_id}", headers=owner.auth).status_code
        == 204
    )
    wait(client)
    assert client.get("/api/users/me/addresses", headers=owner.auth).json()["addresses"] == []


def test_an_address_needs_every_field(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    partial = {k: v for k, v in ADDRESS.items() if k != "postalCode"}
    r = client.post("/api/users/me/addresses", json=partial, headers=user.auth)
    assert r.status_code == 400
    assert r.json()["error"]["details"]["errors"][0]["field"] == "postalCode"


def test_admin_endpoints_are_403_for_buyers(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    for method, path in [
        ("get", "/api/users"),
        ("get", f"/api/users/{user.user_id}"),
        ("put", f"/api/users/{user.user_id}"),
        ("delete", f"/api/users/{user.user_id}"),
        ("get", f"/api/users/{user.user_id}/login-history"),
        ("post", f"/api/admin/sellers/{user.user_id}/approve"),
    ]:
        kwargs = {"json": {"role": "admin"}} if method == "put" else {}
        r = getattr(client, method)(path, headers=user.auth, **kwargs)
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "FORBIDDEN"


def test_admin_lists_and_filters_users_with_pagination(make_client) -> None:
    client = make_client()
    boss = admin(client)
    for i in range(3):
        register(client, f"listed{i}")
    wait(client)
    r = client.get("/api/users", params={"role": "buyer", "pageSize": 2}, headers=boss.auth).json()
    assert r["pagination"] == {"page": 1, "pageSize": 2, "totalItems": 3, "totalPages": 2}
    assert len(r["users"]) == 2
    found = client.get("/api/users", params={"q": "listed1"}, headers=boss.auth).json()["users"]
    assert [u["username"] for u in found] == ["listed1"]
    assert client.get("/api/users", params={"pageSize": 101}, headers=boss.auth).status_code == 400
    assert client.get("/api/users/not-a-uuid", headers=boss.auth).status_code == 404


def test_seller_application_needs_a_verified_email(make_client) -> None:
    client = make_client()
    user = login(client, register(client))
    r = client.post(
        "/api/users/me/seller-application", json={"shopName": "Shop"}, headers=user.auth
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"


def test_admin_approval_makes_a_seller_effective_at_the_next_refresh(make_client) -> None:
    client = make_client()
    boss = admin(client)
    user = verified_user(client)
    r = client.post(
        "/api/users/me/seller-application",
        json={"shopName": "小明商店", "description": "good stuff"},
        headers=user.auth,
    )
    assert r.status_code == 202 and r.json()["status"] == "pending"
    again = client.post(
        "/api/users/me/seller-application", json={"shopName": "x"}, headers=user.auth
    )
    assert again.status_code == 409
    wait(client)
    pending = client.get(
        "/api/users", params={"sellerApplication": "pending"}, headers=boss.auth
    ).json()
    assert [u["userId"] for u in pending["users"]] == [user.user_id]
    r = client.post(f"/api/admin/sellers/{user.user_id}/approve", headers=boss.auth)
    assert r.status_code == 200 and r.json()["role"] == "seller"
    assert (
        client.post(f"/api/admin/sellers/{user.user_id}/approve", headers=boss.auth).status_code
        == 409
    )
    refreshed = client.post("/api/auth/refresh", json={"refreshToken": user.refresh}).json()
    assert refreshed["user"]["role"] == "seller"
    import jwt

    assert (
        jwt.decode(refreshed["accessToken"], options={"verify_signature": False})["role"]
        == "seller"
    )


def test_a_demoted_admin_loses_admin_rights_at_once(make_client) -> None:
    client = make_client()
    boss = admin(client)
    other = admin(client)
    assert (
        client.put(
            f"/api/users/{other.user_id}", json={"role": "buyer"}, headers=boss.auth
        ).status_code
        == 200
    )
    assert client.get("/api/users", headers=other.auth).status_code == 403


def test_admins_cannot_disable_or_demote_themselves(make_client) -> None:
    client = make_client()
    boss = admin(client)
    r = client.put(f"/api/users/{boss.user_id}", json={"status": "disabled"}, headers=boss.auth)
    assert r.status_code == 409


def _seller(client, boss):
    seller = verified_user(client)
    client.post("/api/users/me/seller-application", json={"shopName": "S"}, headers=seller.auth)
    assert (
        client.post(f"/api/admin/sellers/{seller.user_id}/approve", headers=boss.auth).status_code
        == 200
    )
    return seller


def test_more_than_five_distinct_buyers_suspend_listing_rights_until_restored(make_client) -> None:
    client = make_client()
    boss = admin(client)
    seller = _seller(client, boss)
    buyers = [verified_user(client) for _ in range(6)]
    for buyer in buyers[:5]:
        r = client.post(
            f"/api/sellers/{seller.user_id}/reports",
            json={"reason": "fake goods"},
            headers=buyer.auth,
        )
        assert r.status_code == 201
    dup = client.post(
        f"/api/sellers/{seller.user_id}/reports", json={"reason": "again"}, headers=buyers[0].auth
    )
    assert dup.status_code == 409
    wait(client)
    assert (
        client.get(f"/api/users/{seller.user_id}", headers=boss.auth).json()["listingRights"]
        == "active"
    )
    client.post(
        f"/api/sellers/{seller.user_id}/reports", json={"reason": "fake"}, headers=buyers[5].auth
    )
    wait(client)
    assert (
        client.get(f"/api/users/{seller.user_id}", headers=boss.auth).json()["listingRights"]
        == "suspended"
    )
    r = client.post(f"/api/admin/sellers/{seller.user_id}/restore-listing", headers=boss.auth)
    assert r.status_code == 200 and r.json()["listingRights"] == "active"


def test_reports_are_for_verified_buyers_against_sellers(make_client) -> None:
    client = make_client()
    boss = admin(client)
    buyer = verified_user(client)
    unverified = login(client, register(client))
    seller = _seller(client, boss)
    r = client.post(
        f"/api/sellers/{seller.user_id}/reports", json={"reason": "x"}, headers=unverified.auth
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
    r = client.post(
        f"/api/sellers/{buyer.user_id}/reports", json={"reason": "x"}, headers=buyer.auth
    )
    assert r.status_code == 404  # not a seller (the caller itself, here)
    r = client.post(
        f"/api/sellers/{seller.user_id}/reports", json={"reason": "x"}, headers=seller.auth
    )
    assert r.status_code == 403  # sellers do not report
    r = client.post(
        "/api/sellers/00000000-0000-0000-0000-000000000000/reports",
        json={"reason": "x"},
        headers=buyer.auth,
    )
    assert r.status_code == 404


def test_login_history_of_another_user_is_admin_only(make_client) -> None:
    client = make_client()
    boss = admin(client)
    user = login(client, register(client))
    other = login(client, register(client))
    assert (
        client.get(f"/api/users/{user.user_id}/login-history", headers=other.auth).status_code
        == 403
    )
    wait(client)
    r = client.get(f"/api/users/{user.user_id}/login-history", headers=boss.auth)
    assert r.status_code == 200 and r.json()["entries"][0]["success"] is True
    assert (
        client.get(
            "/api/users/00000000-0000-0000-0000-000000000000/login-history", headers=boss.auth
        ).status_code
        == 404
    )
