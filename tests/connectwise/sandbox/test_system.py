"""system/* endpoints: info, mySecurity, customize items, security roles and their settings, API members."""

from __future__ import annotations

from connectwise.sandbox.resources import LEVELS


def test_system_info_fields(acme):
    info = acme.get("system/info").json()
    assert set(info) == {"version", "isCloud", "serverTimeZone", "licenseBits", "cloudRegion"}


def test_my_security_lists_the_callers_role_and_every_other_function_at_none(acme, broken):
    rows = acme.get("system/mySecurity", params={"pageSize": 1000}).json()
    by_name = {(r["moduleName"], r["moduleFunctionName"]): r for r in rows}
    assert by_name[("Finance", "Agreements")]["addLevel"] == "All"
    assert by_name[("Finance", "Agreements")]["deleteLevel"] == "None"
    assert by_name[("Service Desk", "Service Tickets")]["inquireLevel"] == "None"
    for row in rows:
        assert {"moduleIdentifier", "moduleFunctionIdentifier"} <= set(row)
        assert {row[level] for level in ("addLevel", "editLevel", "deleteLevel", "inquireLevel")} <= set(
            LEVELS
        )
    broken_rows = broken.get("system/mySecurity", params={"pageSize": 1000}).json()
    broken_by_name = {(r["moduleName"], r["moduleFunctionName"]): r for r in broken_rows}
    assert broken_by_name[("Finance", "Agreements")]["addLevel"] == "None"
    assert broken_by_name[("Service Desk", "Service Tickets")]["inquireLevel"] == "All"


def test_my_security_takes_conditions(acme):
    rows = acme.get(
        "system/mySecurity", params={"conditions": 'moduleName = "Finance"', "pageSize": 1000}
    ).json()
    assert rows and {r["moduleName"] for r in rows} == {"Finance"}


def test_customize_items_of_the_callers_role(acme, broken):
    rows = acme.get("system/mySecurity/customizeItems/").json()
    items = {(i["customizeIdentifier"], i["itemIdentifier"]) for i in rows}
    # SPEC MySecurityCustomizeItem: id, customizeIdentifier (an enum), itemIdentifier and nothing else
    assert ("SystemTableSetup", "Products / Category") in items and ("FinanceAgreements", "O365") in items
    assert {key for row in rows for key in row} == {"id", "customizeIdentifier", "itemIdentifier"}
    broken_items = {i["itemIdentifier"] for i in broken.get("system/mySecurity/customizeItems").json()}
    assert "Product" not in broken_items


def test_security_roles_get_post_delete_and_settings(acme):
    roles = acme.get("system/securityroles").json()
    assert [r["name"] for r in roles] == ["Billing Sync"]
    settings = acme.get(f"system/securityRoles/{roles[0]['id']}/settings", params={"pageSize": 1000}).json()
    assert any(s["moduleFunctionName"] == "Table Setup" and s["editLevel"] == "All" for s in settings)
    assert all(s["securityRole"]["id"] == roles[0]["id"] for s in settings)
    # The billing sync role may not create roles: System > Security Roles is None.
    assert acme.post("system/securityroles", json={"name": "Other"}).status_code == 403
    # Role settings cannot be changed over the API.
    assert acme.put(f"system/securityroles/{roles[0]['id']}", json={}).status_code == 405


def test_api_members_never_show_keys(acme):
    members = acme.get("system/apiMembers").json()
    assert [m["identifier"] for m in members] == ["billingsync", "oldsync"]
    assert members[0]["securityRole"]["name"] == "Billing Sync"
    assert members[1]["inactiveFlag"] is True
    assert (
        "acmepriv" not in acme.get("system/apiMembers").text
        and "acmepub" not in acme.get("system/apiMembers").text
    )
