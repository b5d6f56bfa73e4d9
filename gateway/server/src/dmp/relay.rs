//! The SOAP relay `POST /dmp/relay/{service}`: the DPI's call, checked against its patient,
//! secured with a fresh VIHF and forwarded to the DMP over mutual TLS; its answer streamed back.
use std::time::Instant;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::dmp::{InsNir, RelayError, Vihf};

use super::runtime::parse_purpose;
use super::vihf::{Refusal, Seal, Via, audit_refused, vihf_for};
use crate::oidc::BackChannel;
use crate::oidc::grant::verify_access_token;
use crate::state::{Audit, Upstreams};
use crate::web::http::{Caller, bearer_missing, bearer_token, problem, with_bearer_challenge};

/// RFC 6750 §3: a bearer error with its `WWW-Authenticate` challenge, as problem details.
fn bearer_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    with_bearer_challenge(problem(status, "Invalid access token", description), error, description)
}

/// The header naming the patient of a relayed call.
pub const PATIENT_HEADER: &str = "x-vigie-patient-ins";
/// The header naming the purpose of use of a relayed call (default `normal`).
pub const PURPOSE_HEADER: &str = "x-vigie-purpose-of-use";

/// `content-type` parameter `name` (lower case; RFC 9110 §5.6.6), unquoted: read with the
/// parser [`vigie_dmp::insert_security`] uses, so the action audited is the one relayed.
fn media_param(content_type: &str, name: &str) -> Option<String> {
    let (_, params) = vigie_dmp::parse_media_type(content_type).ok()?;
    params.into_iter().find_map(|(k, v)| (k == name).then_some(v))
}

/// The text of the first element named `local` (any prefix) in the first `limit` bytes: the
/// WS-Addressing `Action` of a request, the `Reason/Text` of a fault. For audit lines only.
fn element_text(body: &[u8], local: &str, limit: usize) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(limit)]);
    let mut rest: &str = &text;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let name = &rest[..end];
        if name.rsplit(':').next() == Some(local) && !name.starts_with('/') {
            let content = &rest[rest.find('>')? + 1..];
            let value = &content[..content.find('<')?];
            let value = value.trim().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            return Some(value.chars().take(200).collect());
        }
    }
    None
}

/// `POST /dmp/relay/{service}`: the DPI's SOAP 1.2 call (plain or MTOM) with the professional's
/// access token and the patient's INS in `X-Vigie-Patient-INS` → a fresh VIHF in `wsse:Security`
/// → the DMP over mutual TLS → its answer streamed back. Audited (`dmp_call`, EX_AIR-090).
pub async fn relay(
    req: HttpRequest,
    parts: BackChannel,
    path: web::Path<String>,
    mut payload: web::Payload,
) -> HttpResponse {
    let BackChannel { config, oidc, ports, policy, upstreams, audit } = &parts;
    let caller = Caller::of(&req, &config.server);
    let service = path.into_inner();
    let Some(dmp) = upstreams.dmp.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "DMP not configured",
            "the DMP is not enabled on this gateway",
        );
    };
    if !dmp.services.contains(&service) {
        return problem(StatusCode::NOT_FOUND, "Unknown DMP service", &format!("{service:?} is not a relayed service"));
    }
    // RFC 6750 §2.1: the bearer token in the Authorization header.
    let Some(token) = bearer_token(&req) else { return bearer_missing() };
    let claims = match verify_access_token(parts.issuer(), &token).await {
        Ok(c) => c,
        Err(e) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &e),
    };
    let Some(client) = oidc.clients.get(&claims.client_id) else {
        return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the token's client is no longer registered");
    };
    if !client.config.dmp {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token was issued to a client not allowed to reach the DMP (`dmp = true`)",
        );
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/soap+xml" && essence != "multipart/related" {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not a SOAP 1.2 message",
            "expected application/soap+xml, or multipart/related (MTOM) with the envelope as root part",
        );
    }
    let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let patient = match header_str(PATIENT_HEADER).map(InsNir::parse) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return problem(StatusCode::BAD_REQUEST, "Bad patient INS", &format!("X-Vigie-Patient-INS: {e}"));
        }
        None => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Patient INS missing",
                "the X-Vigie-Patient-INS header (the patient's INS-NIR, 15 digits) is required: the VIHF names the patient",
            );
        }
    };
    let purpose = match parse_purpose(&dmp.settings, header_str(PURPOSE_HEADER)) {
        Ok(p) => p,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "Bad purpose of use", &e),
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(c) if body.len() + c.len() <= dmp.max_body_bytes => body.extend_from_slice(&c),
            Ok(_) => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SOAP message too large",
                    &format!("at most {} bytes are relayed (`dmp.relay.max_body_bytes`)", dmp.max_body_bytes),
                );
            }
            Err(e) => return problem(StatusCode::BAD_REQUEST, "Unreadable body", &e.to_string()),
        }
    }
    // One reading of the call: the patients it names, where the VIHF goes and its WS-Addressing
    // action all come from the same parse, so that what is checked is what is relayed.
    let oids: Vec<&str> = dmp.patient_oids.iter().map(String::as_str).collect();
    let soap = match vigie_dmp::SoapCall::read(&body, &content_type, &oids) {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "Not a SOAP 1.2 envelope Vigie can secure", &e.to_string()),
    };
    // RFC 3902 §6.5: the action is the content type's `action` parameter, else the envelope's.
    let typed = media_param(&content_type, "action");
    let action = typed.clone().or_else(|| soap.action().map(str::to_owned));
    // What the relay cannot send is the caller's fault: refused here, before any VIHF, and never
    // counted against the DMP.
    let outgoing_type = match vigie_dmp::with_action(&content_type, action.as_deref()) {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "Bad SOAP action", &e.to_string()),
    };
    // Two actions that differ would let what is audited differ from what the DMP runs.
    if let (Some(typed), Some(addressed)) = (typed.as_deref(), soap.action())
        && typed != addressed
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad SOAP action",
            "the content type's action and the envelope's wsa:Action differ: send the same action in both",
        );
    }
    // The patients the call names in its Body must be the one its VIHF names (the header): a
    // mismatch would trace one patient's file and ask the DMP for another's. Checked before any
    // VIHF is made: a call that cannot be relayed gets none.
    if let Some(other) = soap.patients().iter().find(|n| !n.eq_ignore_ascii_case(patient.as_str())) {
        let other_hash = InsNir::parse(other).map_or_else(|_| "not an INS-NIR".into(), |o| audit.patient_ref(&o));
        audit_refused(
            audit,
            &caller,
            &claims.client_id,
            &format!(
                "relay to {service}: the call names patient {other_hash}, X-Vigie-Patient-INS {}",
                audit.patient_ref(&patient)
            ),
        );
        return problem(
            StatusCode::BAD_REQUEST,
            "Patient mismatch",
            &format!(
                "the call names patient {other:?} in its Body, but X-Vigie-Patient-INS is {:?}: a VIHF \
                 names one patient, and the call must ask for that patient",
                patient.as_str()
            ),
        );
    }
    let Some(relay) = dmp.relay.as_ref() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "DMP relay not configured",
            "the DMP address is not configured on this gateway (`dmp.relay.base_url`)",
        );
    };
    let vihf = match vihf_for(
        Seal { dmp: &dmp, ports, policy, audit, caller: &caller },
        &claims,
        &patient,
        purpose,
        Via::Relay,
    )
    .await
    {
        Ok(v) => v,
        Err(Refusal::Token(m)) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &m),
        Err(Refusal::Policy(m)) => {
            audit_refused(audit, &caller, &claims.client_id, &m);
            return problem(StatusCode::FORBIDDEN, "DMP access refused by policy", &m);
        }
        Err(Refusal::Unavailable(m)) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &m),
        Err(Refusal::Server(m)) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "VIHF not issued", &m),
    };
    let secured = soap.secure(&vihf.xml);
    drop(soap);
    drop(body);
    let started = Instant::now();
    let call = Call {
        upstreams,
        audit,
        caller: &caller,
        subject: &claims.sub,
        client_id: &claims.client_id,
        service: &service,
        action,
        vihf: &vihf,
    };
    // Degraded mode: the DMP's breaker is open; answer at once instead of waiting on it.
    if !upstreams.health.available(crate::health::DMP) {
        let m = "the DMP is unreachable at the moment (its circuit breaker is open after repeated failures); \
                 try again later";
        call.audit(Outcome::Failure, m, started);
        return problem(StatusCode::SERVICE_UNAVAILABLE, "DMP unavailable", m);
    }
    let mut answer = match relay.send(&service, &outgoing_type, secured).await {
        Ok(r) => r,
        Err(e) => return call.failed(&e, started),
    };
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let answer_type = answer.content_type();
    let mut out = HttpResponse::build(status);
    if let Some(t) = &answer_type {
        out.insert_header((header::CONTENT_TYPE, t.as_str()));
    }
    if !status.is_success() {
        // A SOAP fault, read whole (capped) to say in the audit trail what the DMP refused.
        let bytes = match vigie_core::dmp::read_whole(answer.as_mut(), dmp.max_answer_bytes).await {
            Ok(b) => b,
            Err(e) => return call.failed(&e, started),
        };
        let fault = element_text(&bytes, "Fault", bytes.len()).is_some();
        // A fault is the DMP answering; a 5xx without one (a front end's error page) is the DMP
        // failing, and counts against its breaker.
        let outcome = if status.is_server_error() && !fault {
            Err(format!("HTTP {} without a SOAP fault", status.as_u16()))
        } else {
            Ok(started.elapsed())
        };
        upstreams.health.record(crate::health::DMP, outcome);
        let reason = element_text(&bytes, "Text", bytes.len()).unwrap_or_default();
        call.audit(Outcome::Failure, &format!("HTTP {}; {reason}", status.as_u16()), started);
        return out.body(bytes);
    }
    upstreams.health.record(crate::health::DMP, Ok(started.elapsed()));
    if answer.content_length().is_some_and(|n| n > dmp.max_answer_bytes as u64) {
        return call.failed(&RelayError::TooLarge(dmp.max_answer_bytes), started);
    }
    call.audit(Outcome::Success, &format!("HTTP {}", status.as_u16()), started);
    // Streamed as it comes: MTOM answers (documents) are not held in memory. Past the cap, or
    // the deadline, the stream ends with an error: the DPI sees a cut answer, never a whole one.
    let limit = dmp.max_answer_bytes;
    let stream = futures_util::stream::unfold(Some((answer, 0usize)), move |state| async move {
        let (mut r, sent) = state?;
        match r.chunk().await {
            Ok(Some(b)) if sent + b.len() <= limit => {
                let sent = sent + b.len();
                Some((Ok(web::Bytes::from(b)), Some((r, sent))))
            }
            Ok(Some(_)) => {
                tracing::warn!(limit, "DMP answer cut: larger than dmp.relay.max_answer_bytes");
                Some((Err(actix_web::error::ErrorBadGateway("the DMP's answer is too large")), None))
            }
            Ok(None) => None,
            Err(e) => {
                // The transport's error chain, as the adapter read it.
                let detail = match e {
                    RelayError::Timeout(d) | RelayError::Unreachable(d) => d,
                    other => other.to_string(),
                };
                tracing::warn!(error = %detail, "DMP answer cut");
                Some((Err(actix_web::error::ErrorBadGateway("the DMP's answer was cut")), None))
            }
        }
    });
    out.streaming(stream)
}

/// One relayed call, for its audit line.
struct Call<'a> {
    upstreams: &'a Upstreams,
    audit: &'a Audit,
    caller: &'a Caller,
    subject: &'a str,
    client_id: &'a str,
    service: &'a str,
    action: Option<String>,
    vihf: &'a Vihf,
}

impl Call<'_> {
    /// A call that got no usable answer: audited with the reason, counted against the DMP's
    /// breaker only when the DMP failed, told to the caller without the transport's detail.
    fn failed(&self, e: &RelayError, started: Instant) -> HttpResponse {
        let detail = e.to_string();
        if e.is_dmp_failure() {
            self.upstreams.health.record(crate::health::DMP, Err(detail.clone()));
        }
        self.audit(Outcome::Failure, &detail, started);
        match e {
            RelayError::Timeout(_) => problem(
                StatusCode::GATEWAY_TIMEOUT,
                "DMP timeout",
                "the DMP did not answer in the time allowed (`dmp.relay.deadline_ms`); try again later",
            ),
            RelayError::Unreachable(_) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "DMP unavailable",
                "the DMP is unreachable at the moment; try again later",
            ),
            RelayError::TooLarge(n) => problem(
                StatusCode::BAD_GATEWAY,
                "DMP answer too large",
                &format!("the DMP's answer is larger than the {n} bytes Vigie relays (`dmp.relay.max_answer_bytes`)"),
            ),
            RelayError::Service(_) | RelayError::Action(_) | RelayError::Config(_) => {
                problem(StatusCode::BAD_REQUEST, "Call not relayed", &detail)
            }
        }
    }

    fn audit(&self, outcome: Outcome, what: &str, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let result = if outcome == Outcome::Success { "success" } else { "failure" };
        metrics::counter!("vigie_dmp_calls_total", "service" => self.service.to_owned(), "outcome" => result)
            .increment(1);
        self.audit.record(AuditEvent {
            kind: Some(AuditKind::DmpCall),
            outcome: Some(outcome),
            subject: Some(self.subject.to_owned()),
            client_id: Some(self.client_id.to_owned()),
            method: Some(self.service.to_owned()),
            ip: Some(self.caller.ip.clone()),
            request_id: Some(self.caller.request_id.clone()),
            object: Some(self.vihf.id.clone()),
            reason: Some(format!("action {}; {what}; {ms:.1} ms", self.action.as_deref().unwrap_or("(none)"))),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn audit_helpers_read_the_action_and_the_fault_reason() {
        let env = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header><wsa:Action s:mustUnderstand="true">urn:ihe:iti:2007:RegistryStoredQuery</wsa:Action></s:Header></s:Envelope>"#;
        assert_eq!(element_text(env, "Action", 1 << 16).as_deref(), Some("urn:ihe:iti:2007:RegistryStoredQuery"));
        let fault = br#"<env:Fault><env:Reason><env:Text xml:lang="en">VIHF replayed &amp; refused</env:Text></env:Reason></env:Fault>"#;
        assert_eq!(element_text(fault, "Text", 1 << 16).as_deref(), Some("VIHF replayed & refused"));
        assert_eq!(
            media_param(r#"application/soap+xml; charset=utf-8; action="urn:x""#, "action").as_deref(),
            Some("urn:x")
        );
    }

    proptest! {
        #[test]
        fn media_params_never_panic_and_read_back_what_was_written(s in "\\PC{0,200}", v in "[a-z:0-9.]{1,40}") {
            let _ = media_param(&s, "action");
            let ct = format!("application/soap+xml; charset=utf-8; action=\"{v}\"");
            prop_assert_eq!(media_param(&ct, "action"), Some(v));
        }

        #[test]
        fn element_text_never_panics(s in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = element_text(&s, "Action", 200);
        }
    }
}
