//! Durable before the answer (issue 18): a request that records a security-relevant event
//! ([`super::must_be_durable`]: a login, a token, an admin act) is answered only once that event
//! is on stable storage. The handlers record as always; the middleware [`wait`] collects, for the
//! request it wraps, the acknowledgements of those events (a task-local the handler's future
//! sees), and holds the answer until the writer's group commit confirms them. One it cannot
//! confirm (the disk refused it, and the spool too) turns the answer into a 503 problem: the act
//! is not handed to the client without its trace. Other events stay fire-and-forget.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use tokio::sync::oneshot;
use vigie_core::audit::{AuditEvent, AuditSink};

/// The longest an answer waits for its trace: past it, the trail is taken as failing.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// What a refused act is told to wait before trying again.
const RETRY_AFTER_SECS: &str = "30";

/// Each trace's answer from the writer: whether it is on disk, and when the writer said so.
type Waits = Arc<Mutex<Vec<oneshot::Receiver<(bool, Instant)>>>>;

tokio::task_local! {
    static WAITS: Waits;
}

/// Records `event` into `sink`: acknowledged and awaited by the request when it must be durable
/// and a request is being answered, fire-and-forget otherwise.
pub fn record(sink: &dyn AuditSink, event: &AuditEvent) {
    if super::must_be_durable(event)
        && let Ok(waits) = WAITS.try_with(Clone::clone)
    {
        let (tx, rx) = oneshot::channel();
        sink.record_acked(
            event,
            Box::new(move |ok| {
                let _ = tx.send((ok, Instant::now()));
            }),
        );
        waits.lock().unwrap_or_else(|p| p.into_inner()).push(rx);
    } else {
        sink.record(event);
    }
}

/// The middleware: the answer waits for the traces its request recorded.
pub async fn wait<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let waits: Waits = Arc::default();
    let res = WAITS.scope(waits.clone(), next.call(req)).await?;
    let pending = std::mem::take(&mut *waits.lock().unwrap_or_else(|p| p.into_inner()));
    if pending.is_empty() {
        return Ok(res.map_into_left_body());
    }
    // Read only for the answers that wait: not on every request's path.
    let timing = res.request().app_data::<crate::state::State>().is_some_and(|s| s.config.audit.server_timing);
    // What the trail adds to this answer's time: from the handler's end to the last trace on
    // disk (the sync itself, and the hand-offs to the writer and back).
    let began = Instant::now();
    let acks = tokio::time::timeout(ACK_WAIT, futures_util::future::join_all(pending)).await;
    let resumed = Instant::now();
    let held = resumed.duration_since(began);
    metrics::histogram!("vigie_audit_wait_seconds").record(held.as_secs_f64());
    let acks: Vec<_> = acks.map(|acks| acks.into_iter().map(Result::ok).collect()).unwrap_or_default();
    let confirmed = !acks.is_empty() && acks.iter().all(|a| a.is_some_and(|(ok, _)| ok));
    // Of that, the way back: from the writer's answer (or the handler's end, when the answer came
    // first) to this task running again, which waits for a CPU when the gateway's are busy (the
    // machine's share of the hold, not the disk's).
    if let Some(answered) = acks.iter().flatten().map(|(_, at)| *at).max().map(|at| at.max(began)) {
        metrics::histogram!("vigie_audit_wakeup_seconds")
            .record(resumed.saturating_duration_since(answered).as_secs_f64());
    }
    if confirmed {
        let mut res = res;
        if timing {
            server_timing(res.headers_mut(), held);
        }
        return Ok(res.map_into_left_body());
    }
    metrics::counter!("vigie_audit_refused_total").increment(1);
    let (req, _) = res.into_parts();
    let mut problem = crate::web::http::problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Audit trail unavailable",
        "this action cannot be traced right now, so it was not completed: try again in a minute; \
         the operators are alerted (vigie_audit_healthy)",
    );
    // RFC 9110 §10.2.3: a 503 may say when to come back; the trail is retried every half second.
    problem.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    if timing {
        server_timing(problem.headers_mut(), held);
    }
    Ok(ServiceResponse::new(req, problem).map_into_right_body())
}

/// `audit.server_timing`: the answer says how long it waited for its trace, as a metric of the
/// W3C Server Timing header (`audit;dur=0.412`, in milliseconds, §3 "The Server-Timing Header
/// Field"): per answer what `vigie_audit_wait_seconds` sums up, for a DPI editor looking into a
/// slow login and for the benchmark, which sets it against the answer's time measured by the
/// client (docs/audit.md). Appended: other metrics of the header stay.
fn server_timing(headers: &mut actix_web::http::header::HeaderMap, held: Duration) {
    let metric = format!("audit;dur={:.3};desc=\"trace on disk\"", held.as_secs_f64() * 1e3);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&metric) {
        headers.append(actix_web::http::header::HeaderName::from_static("server-timing"), value);
    }
}
