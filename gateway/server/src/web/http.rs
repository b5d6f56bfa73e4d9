//! HTTP edge: request ids, client address, security headers, metrics per route, and the
//! error shapes (OAuth JSON per RFC 6749 §5.2, `application/problem+json` per RFC 9457).
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::json;

use crate::config::server::ServerConfig;
use crate::session::keys::{self, PerAddress};

/// Largest total size of request headers accepted (431 beyond, RFC 6585 §5).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The request id, also returned in `X-Request-Id` and written to logs and audit.
#[derive(Clone)]
pub struct RequestId(pub String);

/// Who is calling: for audit, rate limits and logs.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub ip: String,
    pub user_agent: Option<String>,
    pub request_id: String,
    addr: Option<IpAddr>,
}

impl Caller {
    /// The peer address or, when the peer is a trusted proxy, the client address its
    /// `X-Forwarded-For` names (see [`client_address`]).
    pub fn of(req: &HttpRequest, server: &ServerConfig) -> Self {
        let addr = req.peer_addr().map(|peer| {
            let forwarded = req.headers().get_all(X_FORWARDED_FOR).map(HeaderValue::as_bytes);
            client_address(peer.ip(), forwarded, |ip| server.is_trusted_proxy(ip))
        });
        let ip = addr.map_or_else(|| "unknown".into(), |a| a.to_string());
        let user_agent =
            req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        Self { ip, user_agent, request_id, addr }
    }

    /// Vigie itself, for work no request asked for (a background sweep): no address.
    pub fn internal(request_id: &str) -> Self {
        Self { ip: "-".into(), user_agent: None, request_id: request_id.into(), addr: None }
    }

    /// The store key of this caller's counter for the per-address limit `purpose`: every
    /// per-address rate limit counts through here, so an IPv6 client is one client per /64
    /// (see [`address_key`]).
    pub fn rate_limit_key(&self, limit: PerAddress<'_>) -> String {
        keys::rate_limit_by_address(limit, &self.addr.map_or_else(|| "unknown".into(), address_key))
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// `Retry-After` of a 503 that does not set its own (seconds).
const RETRY_AFTER_SECS: &str = "5";

/// The client's address, from the TCP peer and the `X-Forwarded-For` header lines it sent.
///
/// A proxy that forwards the header appends the address it received the request from to
/// whatever the client wrote (nginx `$proxy_add_x_forwarded_for`, HAProxy, cloud load
/// balancers): only the entries added by trusted proxies are facts, the leftmost ones are the
/// client's claims. So the list is read from the right, passing over trusted proxies, and the
/// first address that is not one is the client; if all are trusted, the leftmost. Several
/// header lines are one list, in order (RFC 9110 §5.3, formerly RFC 7230 §3.2.2), and empty
/// elements are skipped (RFC 9110 §5.6.1). An entry that is not an address, met before the
/// client, makes the header unusable: the peer is the answer, never a guess. The header of a
/// peer that is not a trusted proxy is not read at all.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer) {
        return peer;
    }
    let entries: Vec<&[u8]> = forwarded_for
        .into_iter()
        .flat_map(|line| line.split(|b| *b == b','))
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
        .collect();
    let mut leftmost_trusted = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = forwarded_address(entry) else {
            tracing::warn!(
                "X-Forwarded-For from a trusted proxy holds an entry that is not an address: the proxy's address is used"
            );
            return peer;
        };
        if !trusted(ip) {
            return ip;
        }
        leftmost_trusted = ip;
    }
    leftmost_trusted
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets, as some proxies write it. IPv4-mapped IPv6 addresses
/// are read as IPv4.
fn forwarded_address(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?;
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

/// The part of an address that per-address limits count: an IPv4 address whole, an IPv6
/// address by its /64. A subscriber is given at least a /64 (RFC 6177 §2) and picks the low 64
/// bits itself (RFC 4941 / RFC 8981 temporary addresses): counted per address, one client
/// would have 2^64 budgets.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{}/64", Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// The middleware of every route: request id, header size limit, security headers, metrics.
pub async fn edge<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let started = Instant::now();
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        let resp = problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request headers too large",
            &format!("request headers total {header_bytes} bytes; at most {MAX_HEADER_BYTES} are accepted"),
        );
        return Ok(req.into_response(resp).map_into_right_body());
    }
    let request_id = crate::secrets::random_token(12);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let res = next.call(req).await?;
    // Errors raised by actix itself (payload too large, malformed request) come as text/plain;
    // DESIGN.md promises RFC 9457 problem details for every non-OAuth error.
    let internal_error = res.response().error().map(|e| e.to_string()).filter(|_| {
        (res.status().is_client_error() || res.status().is_server_error())
            && !res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/"))
    });
    let mut res = match internal_error {
        Some(detail) => {
            let status = res.status();
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, problem(status, status.canonical_reason().unwrap_or("Error"), &detail))
                .map_into_right_body()
        }
        None => res.map_into_left_body(),
    };
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let status = res.status();
    let h = res.headers_mut();
    h.insert(
        header::HeaderName::from_static("x-request-id"),
        HeaderValue::from_str(&request_id).unwrap_or(HeaderValue::from_static("-")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if status == StatusCode::SERVICE_UNAVAILABLE && !h.contains_key(header::RETRY_AFTER) {
        // RFC 9110 §10.2.3: a 503 may say when to come back. Every 503 here is a backend (the
        // directory, the store, an upstream) that is down or slow, and its pool's connect or
        // statement timeout is a few seconds: a client or a browser page retrying sooner only
        // adds load.
        h.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        // RFC 6749 §5.1: token responses MUST NOT be cached; nothing else here should be either.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("vigie_http_requests_total", "route" => route.clone(), "method" => method.to_string(), "status" => status.as_u16().to_string()).increment(1);
    metrics::histogram!("vigie_http_request_duration_seconds", "route" => route).record(elapsed);
    tracing::debug!(request_id, status = status.as_u16(), elapsed, "request");
    Ok(res)
}

/// RFC 9457 problem details.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(json!({ "type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail }))
}

/// An OAuth error response of the token, introspection and revocation endpoints
/// (RFC 6749 §5.2).
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({ "error": error, "error_description": description }))
}

/// RFC 6750 §2.1: the access token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive, RFC 9110 §11.1).
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|token| !token.is_empty())
}

/// RFC 6750 §3.1: a request without a token gets 401 and a challenge without an error code.
pub fn bearer_missing() -> HttpResponse {
    HttpResponse::Unauthorized().insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="vigie""#)).finish()
}

/// RFC 6750 §3: the `WWW-Authenticate` challenge of a refused bearer token, with its error code
/// and description (a quote in the description, not allowed there, becomes an apostrophe).
pub fn with_bearer_challenge(mut resp: HttpResponse, error: &str, description: &str) -> HttpResponse {
    let challenge =
        format!(r#"Bearer realm="vigie", error="{error}", error_description="{}""#, description.replace('"', "'"));
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// Parses `application/x-www-form-urlencoded` or a query string. RFC 6749 §3.1: "Request and
/// response parameters MUST NOT be included more than once"; empty values count as absent.
pub fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    // A set, not a scan of `out`: a 64 KiB body of distinct keys took 0.2 s of CPU that way.
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if !seen.insert(k.clone()) {
            return Err(format!("parameter `{k}` is repeated"));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(Params(out))
}

/// Request parameters, each at most once.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// A cookie value from the request.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned())
}

/// A `__Host-` cookie (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain; HttpOnly, SameSite=Lax.
pub fn host_cookie(name: &'static str, value: String, max_age_secs: Option<i64>) -> actix_web::cookie::Cookie<'static> {
    let mut c = actix_web::cookie::Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .finish();
    if let Some(s) = max_age_secs {
        c.set_max_age(actix_web::cookie::time::Duration::seconds(s));
    }
    c
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_params(b"a=1&b=2").is_ok());
        assert_eq!(parse_params(b"a=1&a=2").unwrap_err(), "parameter `a` is repeated");
        assert_eq!(parse_params(b"a=&b=2").unwrap().get("a"), None);
    }

    #[test]
    fn bearer_token_reads_the_authorization_header_only_with_the_bearer_scheme() {
        let with = |v: &str| {
            actix_web::test::TestRequest::default().insert_header((header::AUTHORIZATION, v)).to_http_request()
        };
        assert_eq!(bearer_token(&with("Bearer abc.def")).as_deref(), Some("abc.def"));
        assert_eq!(bearer_token(&with("bearer  abc ")).as_deref(), Some("abc"));
        assert_eq!(bearer_token(&with("Basic YTpi")), None);
        assert_eq!(bearer_token(&with("Bearer ")), None);
        assert_eq!(bearer_token(&with("Bearer")), None);
        assert_eq!(bearer_token(&actix_web::test::TestRequest::default().to_http_request()), None);
        let challenged =
            with_bearer_challenge(HttpResponse::Unauthorized().finish(), "invalid_token", r#"a "quoted" word"#);
        assert_eq!(
            challenged.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="vigie", error="invalid_token", error_description="a 'quoted' word""#
        );
    }

    /// The client address behind a proxy at 10.0.0.10 (trusted, with 10.0.1.0/24), for these
    /// `X-Forwarded-For` lines.
    fn behind_proxy(lines: &[&str]) -> String {
        let trusted =
            [crate::policy::Cidr::parse("10.0.0.10").unwrap(), crate::policy::Cidr::parse("10.0.1.0/24").unwrap()];
        let peer = "10.0.0.10".parse().unwrap();
        client_address(peer, lines.iter().map(|l| l.as_bytes()), |ip| trusted.iter().any(|c| c.contains(ip)))
            .to_string()
    }

    #[test]
    fn the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() {
        // What the client wrote is on the left; the appending proxy added the real address.
        assert_eq!(behind_proxy(&["10.1.2.3, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(behind_proxy(&["203.0.113.7"]), "203.0.113.7");
        // Through two proxies of ours.
        assert_eq!(behind_proxy(&["198.51.100.1, 203.0.113.7, 10.0.1.5"]), "203.0.113.7");
        // Several header lines are one list, in order.
        assert_eq!(behind_proxy(&["10.1.2.3", "203.0.113.7"]), "203.0.113.7");
        assert_eq!(behind_proxy(&["10.1.2.3, 203.0.113.7", "10.0.1.5"]), "203.0.113.7");
        // All trusted: the leftmost; no header: the peer.
        assert_eq!(behind_proxy(&["10.0.1.7, 10.0.1.5"]), "10.0.1.7");
        assert_eq!(behind_proxy(&[]), "10.0.0.10");
        // Ports, brackets, IPv4-mapped IPv6, empty elements.
        assert_eq!(behind_proxy(&["203.0.113.7:4711"]), "203.0.113.7");
        assert_eq!(behind_proxy(&["[2001:db8::1]:4711"]), "2001:db8::1");
        assert_eq!(behind_proxy(&["[2001:db8::1]"]), "2001:db8::1");
        assert_eq!(behind_proxy(&["::ffff:203.0.113.7"]), "203.0.113.7");
        assert_eq!(behind_proxy(&[" , 203.0.113.7 ,, "]), "203.0.113.7");
        // Garbage on the left of the client is the client's business.
        assert_eq!(behind_proxy(&["unknown, \u{0}\u{7f}, 203.0.113.7"]), "203.0.113.7");
        // Garbage where the client should be: the peer, never a guess.
        assert_eq!(behind_proxy(&["203.0.113.7, unknown"]), "10.0.0.10");
        assert_eq!(behind_proxy(&["203.0.113.7, 10.0.1.5, _hidden"]), "10.0.0.10");
        // A peer that is not a trusted proxy: its header is not read.
        let direct = client_address("198.51.100.9".parse().unwrap(), [b"10.1.2.3".as_slice()], |_| false);
        assert_eq!(direct.to_string(), "198.51.100.9");
        let mapped = client_address("::ffff:198.51.100.9".parse().unwrap(), [], |_| false);
        assert_eq!(mapped.to_string(), "198.51.100.9");
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    proptest! {
        #[test]
        fn a_client_cannot_choose_an_address_to_its_right(
            claimed in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
            client in any::<u32>(),
            proxies in 0usize..3,
        ) {
            // Whatever the client writes, a trusted appending proxy adds the real address (and
            // the proxies of ours after it theirs): that address is the answer.
            let client = IpAddr::V4(client.into());
            let trusted = |ip: IpAddr| crate::policy::Cidr::parse("10.0.0.0/8").unwrap().contains(ip);
            prop_assume!(!trusted(client));
            let mut header: Vec<u8> = claimed.join(&b","[..]);
            header.extend_from_slice(format!(", {client}").as_bytes());
            for i in 0..proxies {
                header.extend_from_slice(format!(", 10.0.0.{i}").as_bytes());
            }
            let found = client_address("10.0.0.99".parse().unwrap(), [header.as_slice()], trusted);
            prop_assert_eq!(found, client);
        }

        #[test]
        fn client_address_never_panics(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4)) {
            let _ = client_address("10.0.0.1".parse().unwrap(), lines.iter().map(Vec::as_slice), |_| true);
        }

        #[test]
        fn params_parser_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_params(&raw);
        }

        #[test]
        fn escaped_html_has_no_markup(s in "\\PC{0,100}") {
            let e = esc(&s);
            prop_assert!(!e.contains('<') && !e.contains('"') && !e.contains('\''));
        }
    }
}
