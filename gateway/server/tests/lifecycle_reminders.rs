//! The e-mail reminders before an end date against the real binary and a real SMTP server
//! (`tests/smtp-sink`, Python aiosmtpd): the person and their responsible manager each get one
//! e-mail naming the date, later wakes send nothing more, a relay that refuses is tried again
//! at the next wake and counted, a moved end date is reminded afresh, and a reminder sent is not
//! sent again by a gateway restarted on the same directory after a SIGTERM or a SIGKILL.
use serde_json::Value;

use crate::cli::run;
use crate::common::*;
use crate::sponsorship::SmtpSink;

const FROM: &str = "Vigie RH <rh@chu-demo.example>";

/// Noon UTC two days from now: between 1.5 and 2.5 days left, the 3-day reminder of `[14, 3, 1]`,
/// and the same calendar day in the establishment's time.
fn in_two_days(hours: i64) -> time::OffsetDateTime {
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(2)).date();
    day.with_hms(12, 0, 0).expect("noon").assume_utc() + time::Duration::hours(hours)
}

fn dd_mm_yyyy(t: time::OffsetDateTime) -> String {
    format!("{:02}/{:02}/{}", t.day(), u8::from(t.month()), t.year())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).expect("RFC 3339")
}

fn to(m: &Value) -> String {
    m["rcpt_tos"][0].as_str().unwrap_or_default().to_owned()
}

/// Waits until the sink holds `n` messages, then for one more look that nothing else came.
async fn mails(sink: &SmtpSink, n: usize) -> Vec<Value> {
    let got = sink.wait_for(n).await;
    assert_eq!(got.len(), n, "{got:#?}");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_ending_in_two_days_and_their_manager_are_reminded_once_and_again_when_the_date_moves() {
    // The relay refuses the first two e-mails (451): tried again at the next wake, not lost.
    let sink = SmtpSink::start(2);
    let mut env = sink.env();
    env.extend(
        [
            ("VIGIE_LIFECYCLE__REMINDERS__ENABLED", "true"),
            ("VIGIE_LIFECYCLE__REMINDERS__EVERY_SECS", "1"),
            ("VIGIE_LIFECYCLE__REMINDERS__FROM", FROM),
            ("VIGIE_MAIL__ATTEMPTS", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gw = Gateway::start(&env).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let add = |username: &str, matricule: &str, email: Option<&str>, until: &str| {
        let line = format!(
            "users add-temporary {username} --matricule {matricule} --family Dupuis --given Alex \
             --sponsor M000102 --kind contractor --until {until} --data-dir {dir}"
        );
        let mut args: Vec<&str> = line.split_whitespace().collect();
        if let Some(e) = email {
            args.extend(["--email", e]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let end = in_two_days(0);
    add("ext.dupuis", "EXT0001", Some("alex.dupuis@chu-demo.example"), &rfc3339(end));

    let got = mails(&sink, 2).await;
    let person = got.iter().find(|m| to(m) == "alex.dupuis@chu-demo.example").expect("the person's e-mail");
    let manager = got.iter().find(|m| to(m) == "demo.medecin@chu-demo.example").expect("the manager's e-mail");
    let day = dd_mm_yyyy(end);
    for m in [person, manager] {
        assert_eq!(m["from"], FROM, "{m}");
        let (subject, body) = (m["subject"].as_str().unwrap(), m["body"].as_str().unwrap());
        assert!(subject.contains(&day) && body.contains(&format!("le {day} à 13:00:00")), "{m}");
        assert!(body.contains(&format!("on {day} at 13:00:00")), "English too: {body}");
    }
    let body = person["body"].as_str().unwrap();
    assert!(
        body.contains("demandez à votre responsable (Paul Durand)") && body.contains("ask your manager (Paul Durand)"),
        "{body}"
    );
    assert!(manager["body"].as_str().unwrap().contains("Alex Dupuis (matricule EXT0001)"), "{manager}");
    let sent = gw
        .audit_line(|l| l["kind"] == "reminder_sent" && l["object"] == "to:person" && l["outcome"] == "success")
        .await;
    assert!(sent["reason"].as_str().unwrap().contains("3 day(s) before"), "{sent}");
    assert!(!sent.to_string().contains("demandez"), "no e-mail body in the trail: {sent}");

    // Later wakes: a second person with no address (audited, not retried) proves they ran; the
    // contractor gets nothing more, their manager only the second person's.
    add("ext.nomail", "EXT0002", None, &rfc3339(end));
    gw.audit_line(|l| l["kind"] == "reminder_sent" && l["object"] == "to:person" && l["outcome"] == "failure").await;
    let got = mails(&sink, 3).await;
    assert_eq!(got.iter().filter(|m| to(m) == "alex.dupuis@chu-demo.example").count(), 1, "{got:#?}");
    let failed = counter(&gw, "vigie_lifecycle_reminders_total{result=\"failed\"}").await;
    assert_eq!(failed, 2.0, "the two refused e-mails are counted");

    // HR moves the end date out, then back within three days: reminded afresh, both.
    let later = in_two_days(24 * 28);
    let out = run(&["users", "set-end-date", "ext.dupuis", &rfc3339(later), "--data-dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let back = in_two_days(1);
    let out = run(&["users", "set-end-date", "EXT0001", &rfc3339(back), "--data-dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = mails(&sink, 5).await;
    let moved: Vec<&Value> = got[3..].iter().collect();
    assert!(moved.iter().all(|m| m["body"].as_str().unwrap().contains("14:00:00")), "{moved:#?}");
    assert!(moved.iter().any(|m| to(m) == "alex.dupuis@chu-demo.example"), "{moved:#?}");
    let passed = run(&["users", "set-end-date", "EXT0001", "2020-01-01", "--data-dir", dir]);
    assert!(String::from_utf8_lossy(&passed.stderr).contains("has passed"), "a past end date is refused");
}

/// Stops the `vigie serve` of `gw` with `signal` and waits until the process is gone.
async fn stop(gw: Gateway, signal: i32) {
    let pid = gw.gateway_pid();
    // SAFETY: kill(2) on the pid of the `vigie serve` this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let gone = eventually(30, || async { (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(()) });
    assert!(gone.await.is_some(), "vigie serve (pid {pid}) still runs 30 s after signal {signal}");
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_sent_is_not_sent_again_after_a_sigterm_or_a_sigkill_and_a_restart_on_the_same_directory() {
    let sink = SmtpSink::start(0);
    // The directory outside the gateway's data directory (which the harness removes after a
    // SIGKILL): each restart opens the same database, as a restarted pod does.
    let db = temp_file("directory.db", "");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let mut env = sink.env();
    env.extend(
        [
            ("VIGIE_LIFECYCLE__REMINDERS__ENABLED", "true"),
            ("VIGIE_LIFECYCLE__REMINDERS__EVERY_SECS", "1"),
            ("VIGIE_DIRECTORY__URL", url.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let end = rfc3339(in_two_days(0));
    let add = |gw: &Gateway, n: u32| {
        let email = format!("p{n}@prestataire.example");
        let dir = gw.data_dir.to_str().expect("UTF-8 path");
        let line = format!(
            "users add-temporary ext.p{n} --matricule EXT010{n} --family Dupuis --given Alex --sponsor M000102 \
             --kind contractor --until {end} --email {email} --data-dir {dir}"
        );
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = crate::cli::run_with(&args, &[("VIGIE_DIRECTORY__URL", url.as_str())]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        email
    };
    // Each person's and manager's e-mail once; a later person's e-mails prove a look after the restart ran.
    let check = |got: &[Value], people: &[String]| {
        for p in people {
            assert_eq!(got.iter().filter(|m| to(m) == *p).count(), 1, "one e-mail to {p}: {got:#?}");
        }
        let manager = got.iter().filter(|m| to(m) == "demo.medecin@chu-demo.example").count();
        assert_eq!(manager, people.len(), "one e-mail to the manager per person: {got:#?}");
    };

    let gw = Gateway::start(&env).await;
    let first = add(&gw, 1);
    check(&mails(&sink, 2).await, std::slice::from_ref(&first));

    // SIGTERM (a rolling update drains the pod), then a start on the same directory.
    stop(gw, libc::SIGTERM).await;
    let gw = Gateway::start(&env).await;
    let second = add(&gw, 2);
    sink.wait_for(4).await;
    // Three more looks (every second) for a second e-mail to come, were it to.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    check(&sink.messages(), &[first.clone(), second.clone()]);

    // SIGKILL (a node lost), then a start on the same directory.
    stop(gw, libc::SIGKILL).await;
    let gw = Gateway::start(&env).await;
    let third = add(&gw, 3);
    sink.wait_for(6).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    check(&sink.messages(), &[first, second, third]);
    drop(gw);
    remove_temp(&db);
}
