//! The card registry ([`CardRegistry`]), staff roles ([`Roles`]) and the identity search of the
//! admin page ([`IdentitySearch`]) on the directory database (migration 0002).
//!
//! Every change of a card and the event that records it are written in one transaction: a
//! card's history never misses a step, and its status is always the one its last event entered.
use async_trait::async_trait;
use vigie_core::cards::{Card, CardEvent, CardRegistry, CardStatus, card_fingerprint};
use vigie_core::directory::{Directory, DirectoryError, Identity};
use vigie_core::names::fold;
use vigie_core::roles::{IdentitySearch, Role, Roles};

use crate::SqlDirectory;
use crate::db::{Tx, on_pool, on_tx};
use crate::directory::failed;

/// Longest comment, override reason or actor name accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Longest search query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// Most identities a search returns.
pub const MAX_SEARCH_RESULTS: usize = 200;

/// `SELECT <every card column> FROM cards <rest>`, as one literal (sqlx takes only static SQL).
macro_rules! select_cards {
    ($rest:literal) => {
        concat!(
            "SELECT id, identity_id, kind, status, issuer_dn, serial_hex, cn, bound_at, bound_by, override_reason, \
             created_at, updated_at FROM cards ",
            $rest
        )
    };
}

type CardRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

fn corrupt(what: String) -> DirectoryError {
    DirectoryError::Unavailable(format!("the directory database holds {what}: it was edited by hand? fix the row"))
}

fn card_of(row: CardRow) -> Result<Card, DirectoryError> {
    let (
        id,
        identity_id,
        kind,
        status,
        issuer_dn,
        serial_hex,
        cn,
        bound_at,
        bound_by,
        override_reason,
        created,
        updated,
    ) = row;
    let status =
        CardStatus::parse(&status).ok_or_else(|| corrupt(format!("an unknown status {status:?} of card {id}")))?;
    Ok(Card {
        id,
        identity_id,
        kind,
        status,
        issuer_dn,
        serial_hex,
        cn,
        bound_at,
        bound_by,
        override_reason,
        created_at: created,
        updated_at: updated,
    })
}

fn now() -> Result<String, DirectoryError> {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| DirectoryError::Unavailable(format!("cannot format the current time: {e}")))
}

/// Free text (comment, reason, actor): at most [`MAX_TEXT_CHARS`], no control characters but
/// line breaks; `None` for blank text.
fn text<'a>(what: &str, s: Option<&'a str>, required: bool) -> Result<Option<&'a str>, DirectoryError> {
    let s = s.map(str::trim).filter(|s| !s.is_empty());
    match s {
        None if required => Err(DirectoryError::Invalid(format!("the {what} is empty"))),
        None => Ok(None),
        Some(s) if s.chars().count() > MAX_TEXT_CHARS => {
            Err(DirectoryError::Invalid(format!("the {what} is longer than {MAX_TEXT_CHARS} characters")))
        }
        Some(s) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r') => {
            Err(DirectoryError::Invalid(format!("the {what} contains a control character")))
        }
        Some(s) => Ok(Some(s)),
    }
}

/// The card `id`, read in a write transaction and kept from other writers until it ends: on
/// PostgreSQL the row is locked (`FOR UPDATE`), so two binds or status changes of one card at
/// once are made one after the other, each checking what the other wrote (and its history
/// numbers never collide); on SQLite the transaction already holds the database's write lock.
async fn locked_card(tx: &mut Tx, id: &str) -> Result<Option<Card>, DirectoryError> {
    match tx {
        Tx::Sqlite(t) => {
            sqlx::query_as::<_, CardRow>(select_cards!("WHERE id = $1")).bind(id).fetch_optional(&mut **t).await
        }
        Tx::Postgres(t) => {
            sqlx::query_as::<_, CardRow>(select_cards!("WHERE id = $1 FOR UPDATE"))
                .bind(id)
                .fetch_optional(&mut **t)
                .await
        }
    }
    .map_err(|e| failed("looking up a card", &e))?
    .map(card_of)
    .transpose()
}

async fn existing_card(tx: &mut Tx, id: &str) -> Result<Card, DirectoryError> {
    locked_card(tx, id).await?.ok_or_else(|| {
        DirectoryError::Invalid(format!("there is no card with id {:?}", id.chars().take(64).collect::<String>()))
    })
}

/// Appends a step to a card's history, numbered after its last one.
async fn add_event(
    conn: &mut Tx,
    card_id: &str,
    status: CardStatus,
    at: &str,
    by: &str,
    comment: Option<&str>,
) -> Result<(), DirectoryError> {
    on_tx!(conn, |c| sqlx::query(
        "INSERT INTO card_events (card_id, seq, status, at, actor, comment) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM card_events WHERE card_id = $1",
    )
    .bind(card_id)
    .bind(status.as_str())
    .bind(at)
    .bind(by)
    .bind(comment)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
    .map(|_| ())
    .map_err(|e| failed("recording a card event", &e))
}

impl SqlDirectory {
    /// Binds a card to its certificate, in `status`: handed over (the card was read), or
    /// received, pending its first presentation.
    async fn bind_as(
        &self,
        card_id: &str,
        (issuer_dn, serial_hex, cn): (&str, &str, &str),
        by: &str,
        override_reason: Option<&str>,
        status: CardStatus,
    ) -> Result<Card, DirectoryError> {
        let by = text("actor", Some(by), true)?.unwrap_or_default();
        let reason = text("override reason", override_reason, false)?;
        for (what, value) in [("issuer DN", issuer_dn), ("serial", serial_hex), ("CN", cn)] {
            text(what, Some(value), true)?;
        }
        let mut tx = self.begin_write().await?;
        let card = existing_card(&mut tx, card_id).await?;
        if !card.status.may_bind() {
            return Err(DirectoryError::Invalid(format!(
                "card {card_id} is {}: only a requested, ordered or received card can be bound; record a new card",
                card.status.as_str()
            )));
        }
        let at = now()?;
        let updated = on_tx!(tx, |c| sqlx::query(
            "UPDATE cards SET status = $2, issuer_dn = $3, serial_hex = $4, cn = $5, bound_at = $6, bound_by = $7, \
             override_reason = $8, updated_at = $6 WHERE id = $1",
        )
        .bind(card_id)
        .bind(status.as_str())
        .bind(issuer_dn)
        .bind(serial_hex)
        .bind(cn)
        .bind(&at)
        .bind(by)
        .bind(reason)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()));
        match updated {
            Ok(_) => {}
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                // Outside the transaction: on PostgreSQL the failed statement has aborted it.
                // The holder, committed (a concurrent bind waits for it), is then visible.
                tx.rollback().await.map_err(|e| failed("binding a card", &e))?;
                let holder = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String)>(
                    "SELECT c.id, i.matricule FROM cards c JOIN identities i ON i.id = c.identity_id \
                     WHERE c.issuer_dn = $1 AND c.serial_hex = $2",
                )
                .bind(issuer_dn)
                .bind(serial_hex)
                .fetch_optional(c)
                .await)
                .map_err(|e| failed("looking up a certificate's card", &e))?;
                return Err(DirectoryError::Invalid(match holder {
                    Some((other, matricule)) => format!(
                        "this certificate is already bound to card {other} of the agent with matricule {matricule:?}: \
                         one card, one record"
                    ),
                    None => format!("this certificate is already bound: {e}"),
                }));
            }
            Err(e) => return Err(failed("binding a card", &e)),
        }
        let mut comment = format!("bound to {}", card_fingerprint(issuer_dn, serial_hex));
        if let Some(r) = reason {
            comment.push_str(&format!("; names differ, overridden: {r}"));
        }
        if status != CardStatus::HandedOver {
            comment.push_str("; pending: logs in once its holder presents it");
        }
        add_event(&mut tx, card_id, status, &at, by, Some(&comment)).await?;
        let card = existing_card(&mut tx, card_id).await?;
        tx.commit().await.map_err(|e| failed("saving a binding", &e))?;
        Ok(card)
    }
}

#[async_trait]
impl CardRegistry for SqlDirectory {
    async fn card_by_certificate(&self, issuer_dn: &str, serial_hex: &str) -> Result<Option<Card>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_as::<_, CardRow>(select_cards!("WHERE issuer_dn = $1 AND serial_hex = $2"))
            .bind(issuer_dn)
            .bind(serial_hex)
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("looking up a card by certificate", &e))?
        .map(card_of)
        .transpose()
    }

    async fn card(&self, id: &str) -> Result<Option<Card>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_as::<_, CardRow>(select_cards!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("looking up a card", &e))?
        .map(card_of)
        .transpose()
    }

    async fn cards_of(&self, identity_id: &str) -> Result<Vec<Card>, DirectoryError> {
        // UUID v7 ids grow with time: the newest card has the greatest id.
        on_pool!(self.pool, |c| sqlx::query_as::<_, CardRow>(select_cards!(
            "WHERE identity_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(identity_id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("listing the cards of an agent", &e))?
        .into_iter()
        .map(card_of)
        .collect()
    }

    async fn create_card(
        &self,
        identity_id: &str,
        kind: &str,
        status: CardStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Card, DirectoryError> {
        if kind != "cps" && kind != "cpe" {
            return Err(DirectoryError::Invalid(format!(
                "the card kind must be \"cps\" or \"cpe\", found {:?}",
                kind.chars().take(20).collect::<String>()
            )));
        }
        if !matches!(status, CardStatus::Requested | CardStatus::Ordered | CardStatus::Received) {
            return Err(DirectoryError::Invalid(format!(
                "a card record starts as requested, ordered or received, not {}: a card is handed over \
                 by binding it (reading it in the reader)",
                status.as_str()
            )));
        }
        let by = text("actor", Some(by), true)?.unwrap_or_default();
        let comment = text("comment", comment, false)?;
        let mut tx = self.begin_write().await?;
        let at = now()?;
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO cards (id, identity_id, kind, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(identity_id)
        .bind(kind)
        .bind(status.as_str())
        .bind(&at)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected())
        });
        match inserted {
            Ok(_) => {}
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                return Err(DirectoryError::Invalid(format!(
                    "there is no agent with id {:?}: search the agent first",
                    identity_id.chars().take(64).collect::<String>()
                )));
            }
            Err(e) => return Err(failed("creating a card", &e)),
        }
        add_event(&mut tx, &id, status, &at, by, comment).await?;
        let card = existing_card(&mut tx, &id).await?;
        tx.commit().await.map_err(|e| failed("saving a card", &e))?;
        Ok(card)
    }

    async fn register_presented(
        &self,
        identity_id: &str,
        kind: &str,
        certificate: (&str, &str, &str),
        by: &str,
    ) -> Result<(Card, bool), DirectoryError> {
        let (issuer_dn, serial_hex, _) = certificate;
        // The same holder's card, registered by a login before or at the same time: theirs already.
        let already = |card: Card| {
            if card.identity_id == identity_id {
                Ok((card, false))
            } else {
                Err(DirectoryError::Invalid(format!(
                    "this certificate is already bound to card {} of another agent: one card, one record",
                    card.id
                )))
            }
        };
        if let Some(card) = self.card_by_certificate(issuer_dn, serial_hex).await? {
            return already(card);
        }
        if kind != "cps" && kind != "cpe" {
            return Err(DirectoryError::Invalid(format!(
                "the card kind must be \"cps\" or \"cpe\", found {:?}",
                kind.chars().take(20).collect::<String>()
            )));
        }
        let by = text("actor", Some(by), true)?.unwrap_or_default();
        let (_, _, cn) = certificate;
        for (what, value) in [("issuer DN", issuer_dn), ("serial", serial_hex), ("CN", cn)] {
            text(what, Some(value), true)?;
        }
        // Created and bound in one statement of one transaction: a login that loses the race
        // (the unique certificate) leaves no record behind, and finds the winner's.
        let mut tx = self.begin_write().await?;
        let at = now()?;
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = on_tx!(tx, |c| sqlx::query(
            "INSERT INTO cards (id, identity_id, kind, status, issuer_dn, serial_hex, cn, bound_at, bound_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $8)",
        )
        .bind(&id)
        .bind(identity_id)
        .bind(kind)
        .bind(CardStatus::HandedOver.as_str())
        .bind(issuer_dn)
        .bind(serial_hex)
        .bind(cn)
        .bind(&at)
        .bind(by)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()));
        match inserted {
            Ok(_) => {}
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                // Outside the transaction: on PostgreSQL the failed statement has aborted it.
                tx.rollback().await.map_err(|e| failed("registering a card", &e))?;
                return match self.card_by_certificate(issuer_dn, serial_hex).await? {
                    Some(card) => already(card),
                    None => Err(failed("registering a card", &e)),
                };
            }
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                return Err(DirectoryError::Invalid(format!(
                    "there is no agent with id {:?}: search the agent first",
                    identity_id.chars().take(64).collect::<String>()
                )));
            }
            Err(e) => return Err(failed("registering a card", &e)),
        }
        add_event(&mut tx, &id, CardStatus::Received, &at, by, None).await?;
        let bound = format!("bound to {}", card_fingerprint(issuer_dn, serial_hex));
        add_event(&mut tx, &id, CardStatus::HandedOver, &at, by, Some(&bound)).await?;
        let card = existing_card(&mut tx, &id).await?;
        tx.commit().await.map_err(|e| failed("saving a card", &e))?;
        Ok((card, true))
    }

    async fn bind(
        &self,
        card_id: &str,
        issuer_dn: &str,
        serial_hex: &str,
        cn: &str,
        by: &str,
        override_reason: Option<&str>,
    ) -> Result<Card, DirectoryError> {
        let certificate = (issuer_dn, serial_hex, cn);
        self.bind_as(card_id, certificate, by, override_reason, CardStatus::HandedOver).await
    }

    async fn bind_pending(
        &self,
        card_id: &str,
        issuer_dn: &str,
        serial_hex: &str,
        cn: &str,
        by: &str,
    ) -> Result<Card, DirectoryError> {
        self.bind_as(card_id, (issuer_dn, serial_hex, cn), by, None, CardStatus::Received).await
    }

    async fn confirm_presented(&self, card_id: &str, by: &str) -> Result<Card, DirectoryError> {
        let by = text("actor", Some(by), true)?.unwrap_or_default();
        let mut tx = self.begin_write().await?;
        let at = now()?;
        // Only a card still pending: a status declared meanwhile (lost, returned…) wins, and of
        // two presentations at once one hands the card over.
        let updated = on_tx!(tx, |c| sqlx::query(
            "UPDATE cards SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4 AND issuer_dn IS NOT NULL",
        )
        .bind(card_id)
        .bind(CardStatus::HandedOver.as_str())
        .bind(&at)
        .bind(CardStatus::Received.as_str())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("handing over a presented card", &e))?;
        if updated == 1 {
            let comment = "presented by its holder (TLS handshake signed by the card): binding active";
            add_event(&mut tx, card_id, CardStatus::HandedOver, &at, by, Some(comment)).await?;
        }
        let card = existing_card(&mut tx, card_id).await?;
        tx.commit().await.map_err(|e| failed("saving a card's presentation", &e))?;
        Ok(card)
    }

    async fn set_status(
        &self,
        card_id: &str,
        status: CardStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Card, DirectoryError> {
        let by = text("actor", Some(by), true)?.unwrap_or_default();
        let comment = text("comment", comment, false)?;
        let mut tx = self.begin_write().await?;
        let card = existing_card(&mut tx, card_id).await?;
        let at = now()?;
        if card.status == status {
            // Same status: a dated comment in the history (a reminder sent, a call made), or nothing.
            let Some(comment) = comment else {
                return Err(DirectoryError::Invalid(format!(
                    "card {card_id} is already {}: give a comment to add a note to its history",
                    status.as_str()
                )));
            };
            add_event(&mut tx, card_id, status, &at, by, Some(comment)).await?;
        } else {
            if !card.status.may_become(status) {
                let allowed: Vec<&str> = card.status.next().iter().map(|s| s.as_str()).collect();
                let hint = if status == CardStatus::HandedOver {
                    "a card is handed over by binding it (reading it in the reader)".to_owned()
                } else if allowed.is_empty() {
                    "it is at the end of its life: record a new card".to_owned()
                } else {
                    format!("from {} it may become {}", card.status.as_str(), allowed.join(", "))
                };
                return Err(DirectoryError::Invalid(format!(
                    "card {card_id} cannot go from {} to {}: {hint}",
                    card.status.as_str(),
                    status.as_str()
                )));
            }
            on_tx!(tx, |c| sqlx::query("UPDATE cards SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(card_id)
                .bind(status.as_str())
                .bind(&at)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| failed("changing a card's status", &e))?;
            add_event(&mut tx, card_id, status, &at, by, comment).await?;
        }
        let card = existing_card(&mut tx, card_id).await?;
        tx.commit().await.map_err(|e| failed("saving a card's status", &e))?;
        Ok(card)
    }

    async fn events(&self, card_id: &str) -> Result<Vec<CardEvent>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String, Option<String>)>(
            "SELECT status, at, actor, comment FROM card_events WHERE card_id = $1 ORDER BY seq",
        )
        .bind(card_id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading a card's history", &e))?;
        rows.into_iter()
            .map(|(status, at, by, comment)| {
                let status = CardStatus::parse(&status)
                    .ok_or_else(|| corrupt(format!("an unknown status {status:?} in the history of card {card_id}")))?;
                Ok(CardEvent { card_id: card_id.to_owned(), status, at, by, comment })
            })
            .collect()
    }
}

#[async_trait]
impl Roles for SqlDirectory {
    async fn roles_of(&self, identity_id: &str) -> Result<Vec<Role>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_scalar::<_, String>(
            "SELECT role FROM identity_roles WHERE identity_id = $1 ORDER BY role"
        )
        .bind(identity_id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading roles", &e))?;
        // A role this version does not know (granted by a newer one) gives nothing here.
        Ok(rows.iter().filter_map(|r| Role::parse(r).ok()).collect())
    }

    async fn grant(&self, identity_id: &str, role: Role, by: &str) -> Result<(), DirectoryError> {
        let by = text("actor", Some(by), true)?.unwrap_or_default();
        let granted = on_pool!(self.pool, |c| sqlx::query(
            "INSERT INTO identity_roles (identity_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (identity_id, role) DO NOTHING",
        )
        .bind(identity_id)
        .bind(role.as_str())
        .bind(now()?)
        .bind(by)
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        match granted {
            Ok(_) => Ok(()),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => Err(
                DirectoryError::Invalid(format!("there is no identity with id {identity_id:?}: cannot grant {role}")),
            ),
            Err(e) => Err(failed("granting a role", &e)),
        }
    }

    async fn revoke(&self, identity_id: &str, role: Role) -> Result<bool, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query("DELETE FROM identity_roles WHERE identity_id = $1 AND role = $2")
            .bind(identity_id)
            .bind(role.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map(|r| r > 0)
        .map_err(|e| failed("revoking a role", &e))
    }
}

/// Whether a search matches a person: `folded` (the query folded: accents, case, separators)
/// within the family or given name or both in either order, or `upper` (the query in upper
/// case) within the matricule or idNat. The folded names when it does, to sort by.
pub(crate) fn matches(
    folded: &str,
    upper: &str,
    family: &str,
    given: &str,
    matricule: &str,
    idnat: Option<&str>,
) -> Option<(String, String)> {
    let (f, g) = (fold(family), fold(given));
    let hit = f.contains(folded)
        || g.contains(folded)
        || format!("{g}{f}").contains(folded)
        || format!("{f}{g}").contains(folded)
        || matricule.to_uppercase().contains(upper)
        || idnat.is_some_and(|i| i.contains(upper));
    hit.then_some((f, g))
}

#[async_trait]
impl IdentitySearch for SqlDirectory {
    async fn search_identities(&self, query: &str, limit: usize) -> Result<Vec<Identity>, DirectoryError> {
        let query = query.trim();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(DirectoryError::Invalid(format!("the search is longer than {MAX_QUERY_CHARS} characters")));
        }
        let folded = fold(query);
        if folded.is_empty() {
            return Ok(Vec::new());
        }
        let upper = query.to_uppercase();
        // Names are compared folded (accents, case, separators), which SQL cannot do portably;
        // an establishment has thousands of agents, not millions: the filter runs here.
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String, String, Option<String>)>(
            "SELECT id, matricule, family_name, given_name, idnat FROM identities",
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("searching identities", &e))?;
        let mut found: Vec<(String, String, String)> = rows
            .into_iter()
            .filter_map(|(id, matricule, family, given, idnat)| {
                let (f, g) = matches(&folded, &upper, &family, &given, &matricule, idnat.as_deref())?;
                Some((f, g, id))
            })
            .collect();
        found.sort();
        let mut out = Vec::new();
        for (_, _, id) in found.into_iter().take(limit.min(MAX_SEARCH_RESULTS)) {
            if let Some(identity) = self.identity(&id).await? {
                out.push(identity);
            }
        }
        Ok(out)
    }
}
