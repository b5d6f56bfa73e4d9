//! SCIM 2.0 provisioning against the real binary, for what scim2-tester (tests/scim/run) does not
//! check: filters, pagination, ETags, the token's scope both ways, errors, and `active=false`
//! ending a person's SSO session and refresh family, audited.
use crate::common;

use common::*;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const VIGIE: &str = "urn:vigie:params:scim:schemas:extension:vigie:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn scim_token(gw: &Gateway) -> String {
    gw.demo["scim_api"]["token"].as_str().expect("demo.json scim_api.token").to_owned()
}

fn admin_token(gw: &Gateway) -> String {
    gw.demo["admin_api"]["token"].as_str().expect("demo.json admin_api.token").to_owned()
}

async fn call(
    gw: &Gateway,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = gw.http().request(method, gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/scim+json").body(b.to_string());
    }
    Resp::of(req.send().await.expect("gateway reachable")).await
}

async fn scim(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Resp {
    call(gw, Some(&scim_token(gw)), method, &format!("/scim/v2{path}"), body, &[]).await
}

fn assert_scim_error(r: &Resp, status: u16, scim_type: Option<&str>, detail_has: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/scim+json"), "{}", r.body);
    let j = r.json();
    assert_eq!(j["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{j}");
    assert_eq!(j["status"], json!(status.to_string()), "RFC 7644 §3.12: status is a string");
    assert_eq!(j["scimType"].as_str(), scim_type, "{j}");
    let detail = j["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(detail_has), "detail {detail:?} should say {detail_has:?}");
}

/// A user for this run: names made unique so that tests sharing the gateway never meet.
fn user(tag: &str, n: usize, family: &str, active: bool) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE, VIGIE],
        "userName": format!("{tag}.u{n}"),
        "externalId": format!("ext-{tag}-{n}"),
        "name": {"familyName": family, "givenName": format!("G{n}")},
        "active": active,
        "emails": [{"value": format!("u{n}@{tag}.example"), "type": "work"}],
        ENTERPRISE: {"employeeNumber": format!("{tag}-M{n:03}")},
        VIGIE: {"units": [format!("UF-{tag}")], "metier": "IDE"},
    })
}

async fn create(gw: &Gateway, body: Value) -> Value {
    let r = scim(gw, "POST", "/Users", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

async fn list(gw: &Gateway, query: &str) -> Value {
    let r = scim(gw, "GET", &format!("/Users?{query}"), None).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|u| u["userName"].as_str().unwrap_or_default().to_owned())
        .collect();
    v.sort();
    v
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn filters_select_users_by_each_documented_attribute_and_pages_count_them() {
    let gw = gw().await;
    let tag = format!("f{}", random(4).to_lowercase().replace(['-', '_'], "x"));
    for (n, family, active) in [(1, "Dupont", true), (2, "Durand", true), (3, "Dupuis", false), (4, "Martin", true)] {
        let mut body = user(&tag, n, family, active);
        if n == 4 {
            body.as_object_mut().unwrap().remove("active");
        }
        create(gw, body).await;
    }
    let u = |n: usize| format!("{tag}.u{n}");
    let cases: Vec<(String, Vec<String>)> = vec![
        (format!(r#"userName eq "{}""#, u(2).to_uppercase()), vec![u(2)]),
        (format!(r#"userName sw "{tag}.""#), vec![u(1), u(2), u(3), u(4)]),
        (format!(r#"externalId eq "ext-{tag}-3""#), vec![u(3)]),
        // externalId is caseExact (RFC 7643 §3.1).
        (format!(r#"externalId eq "EXT-{tag}-3""#), vec![]),
        (format!(r#"emails.value eq "u4@{tag}.example""#), vec![u(4)]),
        (format!(r#"userName sw "{tag}." and name.familyName sw "Dup""#), vec![u(1), u(3)]),
        (format!(r#"userName sw "{tag}." and active eq false"#), vec![u(3)]),
        (
            format!(r#"{ENTERPRISE}:employeeNumber eq "{tag}-M002" or {ENTERPRISE}:employeeNumber eq "{tag}-M004""#),
            vec![u(2), u(4)],
        ),
        (format!(r#"userName sw "{tag}." and not (active eq true)"#), vec![u(3)]),
        // u(4) never wrote `active`: its account is active all the same.
        (format!(r#"userName sw "{tag}." and active eq true"#), vec![u(1), u(2), u(4)]),
        (
            format!(r#"userName sw "{tag}." and emails[type eq "work" and value ew "{tag}.example"]"#),
            vec![u(1), u(2), u(3), u(4)],
        ),
        (format!(r#"userName sw "{tag}." and title pr"#), vec![]),
        (format!(r#"userName sw "{tag}." and {VIGIE}:metier pr"#), vec![u(1), u(2), u(3), u(4)]),
    ];
    for (filter, want) in cases {
        let got = list(gw, &format!("filter={}", enc(&filter))).await;
        assert_eq!(names(&got), want, "{filter}");
        assert_eq!(got["totalResults"], json!(want.len()), "{filter}");
    }

    // RFC 7644 §3.4.2.4: 1-based startIndex, count per page, totalResults the whole match.
    let all = format!("filter={}", enc(&format!(r#"userName sw "{tag}.""#)));
    let page = list(gw, &format!("{all}&startIndex=2&count=2")).await;
    assert_eq!(
        (page["totalResults"].clone(), page["startIndex"].clone(), page["itemsPerPage"].clone()),
        (json!(4), json!(2), json!(2))
    );
    let first = list(gw, &format!("{all}&startIndex=1&count=2")).await;
    let last = list(gw, &format!("{all}&startIndex=3&count=5")).await;
    let mut pages: Vec<String> = [names(&first), names(&page)].concat();
    pages.dedup();
    assert_eq!(pages.len(), 3, "consecutive pages overlap by one: {pages:?}");
    assert_eq!(last["itemsPerPage"], json!(2));
    // Out of range: an empty page, no error; a count of 0 gives the total only.
    assert_eq!(list(gw, &format!("{all}&startIndex=50")).await["Resources"], json!([]));
    let none = list(gw, &format!("{all}&count=0")).await;
    assert_eq!((none["totalResults"].clone(), none["Resources"].clone()), (json!(4), json!([])));
}

#[tokio::test]
async fn a_bad_filter_is_refused_with_invalid_filter_saying_where() {
    let gw = gw().await;
    for (filter, says) in [
        (r#"userName xx "a""#, "at character 9: unknown operator"),
        (r#"userName eq "a"#, "at character 12: the string starting here has no closing quote"),
        ("(userName pr", "at character 12: expected ')'"),
    ] {
        let r = scim(gw, "GET", &format!("/Users?filter={}", enc(filter)), None).await;
        assert_scim_error(&r, 400, Some("invalidFilter"), says);
    }
}

#[tokio::test]
async fn etags_make_a_stale_change_fail_with_412_and_a_current_one_pass() {
    let gw = gw().await;
    let tag = format!("e{}", random(4).to_lowercase().replace(['-', '_'], "x"));
    let created = create(gw, user(&tag, 1, "Etag", true)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let v1 = created["meta"]["version"].as_str().unwrap().to_owned();
    let path = format!("/scim/v2/Users/{id}");
    let token = scim_token(gw);

    let r = call(gw, Some(&token), "GET", &path, None, &[]).await;
    assert_eq!((r.status, r.header("etag")), (200, Some(v1.as_str())));
    let r = call(gw, Some(&token), "GET", &path, None, &[("if-none-match", &v1)]).await;
    assert_eq!(r.status, 304, "RFC 7644 §3.14: unchanged since the version held");

    let mut changed = user(&tag, 1, "Etag", true);
    changed["displayName"] = json!("Changed once");
    let r = call(gw, Some(&token), "PUT", &path, Some(changed.clone()), &[("if-match", &v1)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v2 = r.header("etag").expect("new etag").to_owned();
    assert_ne!(v1, v2);
    assert_eq!(r.json()["displayName"], json!("Changed once"));

    // Every writer holding v1 now fails, and changes nothing.
    changed["displayName"] = json!("Lost update");
    let r = call(gw, Some(&token), "PUT", &path, Some(changed), &[("if-match", &v1)]).await;
    assert_scim_error(&r, 412, None, &format!("its version is now {v2}"));
    let patch =
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Lost"}]});
    let r = call(gw, Some(&token), "PATCH", &path, Some(patch.clone()), &[("if-match", &v1)]).await;
    assert_eq!(r.status, 412, "{}", r.body);
    let r = call(gw, Some(&token), "DELETE", &path, None, &[("if-match", &v1)]).await;
    assert_eq!(r.status, 412, "{}", r.body);
    let r = call(gw, Some(&token), "GET", &path, None, &[]).await;
    assert_eq!(r.json()["displayName"], json!("Changed once"));

    let r = call(gw, Some(&token), "PATCH", &path, Some(patch), &[("if-match", &v2)]).await;
    assert_eq!((r.status, r.json()["displayName"].clone()), (200, json!("Lost")), "{}", r.body);
    let v3 = r.header("etag").unwrap().to_owned();
    let r = call(gw, Some(&token), "DELETE", &path, None, &[("if-match", &v3)]).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_scim_error(&call(gw, Some(&token), "GET", &path, None, &[]).await, 404, None, "no User with id");
}

#[tokio::test]
async fn the_provisioning_token_opens_scim_only_and_other_tokens_do_not_open_scim() {
    let gw = gw().await;
    let (scim_t, admin_t) = (scim_token(gw), admin_token(gw));
    // An admin token without the provisioning role and scope.
    let r = call(gw, Some(&admin_t), "GET", "/scim/v2/Users", None, &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("does not have the role provisioning"), "{}", r.body);
    let r = call(gw, Some(&admin_t), "POST", "/scim/v2/Users", Some(user("adm", 1, "X", true)), &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // The provisioning token on the admin API: it has no role there.
    for path in ["/admin/api/identities?q=durand", "/admin/api/cards/x"] {
        let r = call(gw, Some(&scim_t), "GET", path, None, &[]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    // No token, or an unknown one.
    let r = call(gw, None, "GET", "/scim/v2/Users", None, &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let r = call(gw, Some("vga_not-a-token"), "GET", "/scim/v2/ServiceProviderConfig", None, &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // The refusals are audited, naming the token, never its value.
    let audit = gw.settled_audit().await;
    let refused: Vec<&Value> = audit
        .iter()
        .filter(|l| l["kind"] == "refused" && l["object"].as_str().is_some_and(|o| o.contains("/scim/v2/")))
        .collect();
    assert!(refused.iter().any(|l| l["actor"] == "token:demo-rh"), "{refused:?}");
    assert!(!audit.iter().any(|l| l.to_string().contains(&admin_t) || l.to_string().contains(&scim_t)));
}

#[tokio::test]
async fn bad_resources_get_precise_scim_errors() {
    let gw = gw().await;
    let tag = format!("b{}", random(4).to_lowercase().replace(['-', '_'], "x"));
    create(gw, user(&tag, 1, "Unique", true)).await;
    let mut twin = user(&tag, 1, "Twin", true);
    twin[ENTERPRISE]["employeeNumber"] = json!(format!("{tag}-other"));
    assert_scim_error(&scim(gw, "POST", "/Users", Some(twin)).await, 409, Some("uniqueness"), "userName");
    let mut same_matricule = user(&tag, 2, "Twin", true);
    same_matricule[ENTERPRISE]["employeeNumber"] = json!(format!("{tag}-M001"));
    assert_scim_error(
        &scim(gw, "POST", "/Users", Some(same_matricule)).await,
        409,
        Some("uniqueness"),
        "employeeNumber",
    );
    let mut bad_idnat = user(&tag, 3, "Bad", true);
    bad_idnat[VIGIE]["idNat"] = json!("not-an-idnat");
    assert_scim_error(
        &scim(gw, "POST", "/Users", Some(bad_idnat)).await,
        400,
        Some("invalidValue"),
        "is not an idNat_PS",
    );
    assert_scim_error(
        &scim(gw, "POST", "/Users", Some(json!({"schemas": [USER]}))).await,
        400,
        Some("invalidValue"),
        "userName is required",
    );
    let r = call(gw, Some(&scim_token(gw)), "POST", "/scim/v2/Users", None, &[]).await;
    assert_scim_error(&r, 400, Some("invalidSyntax"), "the body is not JSON");
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("{tag}-g"), "members": [{"value": "no-such-user"}]});
    assert_scim_error(
        &scim(gw, "POST", "/Groups", Some(group)).await,
        400,
        Some("invalidValue"),
        "not a provisioned User",
    );
    // Nothing of the database leaks into a message.
    let r = scim(gw, "POST", "/Users", Some(user(&tag, 1, "Again", true))).await;
    assert!(!r.body.to_lowercase().contains("sql") && !r.body.contains("UNIQUE"), "{}", r.body);
}

#[tokio::test]
async fn active_false_ends_the_persons_sso_session_and_refresh_family_and_is_audited() {
    let gw = gw().await;
    let (mut b, _, _, t) = logged_in(gw, "demo-cli", &["demo.infirmiere"]).await;
    assert_eq!(gw.introspect("demo-cli", &t.access).await["active"], true);
    // HR's record of the person, found as HR would (the admin API), then taken under SCIM
    // provisioning by its matricule.
    let r = call(gw, Some(&admin_token(gw)), "GET", "/admin/api/identities?q=Camille%20Martin", None, &[]).await;
    let found = r.json()["identities"][0].clone();
    let (identity, matricule) =
        (found["id"].as_str().unwrap().to_owned(), found["matricule"].as_str().unwrap().to_owned());
    let body = json!({
        "schemas": [USER, ENTERPRISE], "userName": "demo.infirmiere", "active": true,
        "name": {"familyName": "Martin", "givenName": "Camille"}, ENTERPRISE: {"employeeNumber": matricule},
    });
    let created = create(gw, body).await;
    assert_eq!(created["id"], json!(identity), "the HR identity is linked, not duplicated");

    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]});
    let r = scim(gw, "PATCH", &format!("/Users/{identity}"), Some(patch)).await;
    assert_eq!((r.status, r.json()["active"].clone()), (200, json!(false)), "{}", r.body);

    // The refresh family, the access token and the SSO session are gone.
    let r = gw.token("demo-cli", &[("grant_type", "refresh_token"), ("refresh_token", &t.refresh)]).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.body);
    assert_eq!(gw.introspect("demo-cli", &t.access).await, json!({"active": false}));
    let r = b.authorize(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(r.redirect_params().get("error").map(String::as_str), Some("login_required"));

    // Audited: who (the token's name), what, which attributes, the sessions ended; no secret.
    let audit = gw.settled_audit().await;
    let line = audit
        .iter()
        .find(|l| l["kind"] == "provisioned" && l["method"] == "PATCH" && l["object"] == format!("User/{identity}"))
        .unwrap_or_else(|| panic!("a provisioned line: {audit:?}"));
    assert_eq!((line["actor"].clone(), line["outcome"].clone()), (json!("token:demo-scim"), json!("success")));
    let reason = line["reason"].as_str().unwrap();
    assert!(reason.contains("replace active") && reason.contains("access ended: 1 session(s)"), "{reason}");
    let created_line = audit
        .iter()
        .find(|l| l["kind"] == "provisioned" && l["method"] == "POST" && l["object"] == format!("User/{identity}"))
        .expect("create audited");
    assert!(created_line["reason"].as_str().unwrap().contains("userName"), "{created_line}");
    assert!(!created_line.to_string().contains(&matricule), "attribute names, not values: {created_line}");
    assert!(!audit.iter().any(|l| l.to_string().contains(&scim_token(gw))));

    // Active again: the person may log in again (the account is enabled).
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": true}]});
    assert_eq!(scim(gw, "PATCH", &format!("/Users/{identity}"), Some(patch)).await.status, 200);
    logged_in(gw, "demo-cli", &["demo.infirmiere"]).await;
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    // A gateway of its own: the limit is low, and the other tests' calls must not count.
    let gw = Gateway::start(&[("VIGIE_SCIM__REQUESTS_PER_MINUTE", "5")]).await;
    for n in 1..=5 {
        let r = scim(&gw, "GET", "/ServiceProviderConfig", None).await;
        assert_eq!(r.status, 200, "call {n}: {}", r.body);
    }
    let r = scim(&gw, "GET", "/Users", None).await;
    assert_scim_error(&r, 429, None, "more than 5 SCIM calls in a minute");
    assert_eq!(r.header("retry-after"), Some("60"));
    // Unauthenticated callers do not spend it, and the admin API is not limited by it.
    assert_eq!(call(&gw, None, "GET", "/scim/v2/Users", None, &[]).await.status, 401);
    let r = call(&gw, Some(&admin_token(&gw)), "GET", "/admin/api/identities?q=durand", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn deleting_a_user_ends_their_access_and_keeps_their_identity() {
    let gw = gw().await;
    let (mut b, _, _, t) = logged_in(gw, "demo-cli", &["demo.interne"]).await;
    let r = call(gw, Some(&admin_token(gw)), "GET", "/admin/api/identities?q=Bernard", None, &[]).await;
    let found = r.json()["identities"][0].clone();
    let identity = found["id"].as_str().unwrap().to_owned();
    let body = json!({
        "schemas": [USER, ENTERPRISE], "userName": "demo.interne",
        ENTERPRISE: {"employeeNumber": found["matricule"].clone()},
    });
    assert_eq!(create(gw, body).await["id"], json!(identity));

    let r = scim(gw, "DELETE", &format!("/Users/{identity}"), None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = gw.token("demo-cli", &[("grant_type", "refresh_token"), ("refresh_token", &t.refresh)]).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.body);
    let r = b.authorize(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(r.redirect_params().get("error").map(String::as_str), Some("login_required"));
    assert_eq!(scim(gw, "GET", &format!("/Users/{identity}"), None).await.status, 404);
    // HR still finds the person (ids are never reused; cards keep their history).
    let r =
        call(gw, Some(&admin_token(gw)), "GET", &format!("/admin/api/identities/{identity}/cards"), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let audit = gw.settled_audit().await;
    assert!(audit.iter().any(|l| l["kind"] == "provisioned"
        && l["method"] == "DELETE"
        && l["object"] == format!("User/{identity}")
        && l["reason"].as_str().is_some_and(|r| r.contains("access ended: 1 session(s)"))));
}

#[tokio::test]
async fn lists_sort_by_an_attribute_either_way_before_paging_and_a_bad_sort_is_refused() {
    let gw = gw().await;
    let tag = "sort";
    for (n, family) in [(1, "martin"), (2, "Bernard"), (3, "durand")] {
        create(gw, user(tag, n, family, true)).await;
    }
    let only = format!("filter={}", enc(&format!("userName sw \"{tag}.\"")));
    let order = |l: &Value| -> Vec<String> {
        l["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|u| u["name"]["familyName"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // RFC 7644 §3.4.2.3: ascending by default, strings ignoring case.
    let up = list(gw, &format!("{only}&sortBy=name.familyName")).await;
    assert_eq!(order(&up), ["Bernard", "durand", "martin"]);
    let down = list(gw, &format!("{only}&sortBy=name.familyName&sortOrder=descending")).await;
    assert_eq!(order(&down), ["martin", "durand", "Bernard"]);
    // Sorted, then paged: the second page of one is the second in that order.
    let second =
        list(gw, &format!("{only}&sortBy={}&startIndex=2&count=1", enc(&format!("{ENTERPRISE}:employeeNumber")))).await;
    assert_eq!(order(&second), ["Bernard"], "{second}");
    assert_eq!(second["totalResults"], 3);
    // The same through a SearchRequest (§3.4.3).
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": format!("userName sw \"{tag}.\""), "sortBy": "name.familyName", "sortOrder": "descending",
    });
    let r = scim(gw, "POST", "/Users/.search", Some(search)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(order(&r.json()), ["martin", "durand", "Bernard"]);

    let bad = scim(gw, "GET", &format!("/Users?{only}&sortBy=name.familyName&sortOrder=up"), None).await;
    assert_scim_error(&bad, 400, Some("invalidValue"), "\"ascending\" or \"descending\"");
    let bad = scim(gw, "GET", &format!("/Users?sortBy={}", enc("emails[type eq \"work\"]")), None).await;
    assert_scim_error(&bad, 400, Some("invalidValue"), "without a filter");
}

#[tokio::test]
async fn me_and_bulk_say_501_as_the_service_provider_config_tells() {
    let gw = gw().await;
    let spc = scim(gw, "GET", "/ServiceProviderConfig", None).await.json();
    assert_eq!(spc["sort"]["supported"], true, "{spc}");
    assert_eq!(spc["bulk"]["supported"], false, "{spc}");
    for (method, path) in [("GET", "/Me"), ("PATCH", "/Me"), ("POST", "/Bulk")] {
        let r = scim(gw, method, path, Some(json!({}))).await;
        assert_scim_error(&r, 501, None, "not offered");
    }
    // Not without a provisioning token: nothing is told to a stranger.
    let r = call(gw, None, "GET", "/scim/v2/Me", None, &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
}
