//! The load benchmark's `--store audit`: what the durable audit trail costs the SSO round trip,
//! the refresh and the card login (issue 18). The same gateway (in-process store) twice: with the
//! demo's trail (a file, hash-chained, signed checkpoints, each login and token answered only once
//! its record is `fdatasync`'d: `audit::durable`), then with `audit.file = "-"` (records written
//! to standard output, here `/dev/null`: no sync, no checkpoint), the phases alike.
use super::{Backend, bench, bench_cards, card_setup, start};

pub async fn bench_audit(secs: u64, concurrency: usize) {
    let cards = card_setup();
    for (label, file) in [("trail on (file + fdatasync)", None), ("trail off (stdout)", Some("-"))] {
        let mut env = cards.env.clone();
        env.extend(file.map(|f| ("VIGIE_AUDIT__FILE".to_owned(), f.to_owned())));
        let gw = start(Backend::Embedded, 1, &env);
        bench(label, &gw, secs, concurrency, false).await;
        bench_cards(label, &gw, &cards, secs, concurrency, false).await;
    }
}
