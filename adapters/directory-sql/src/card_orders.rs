//! Card orders for joiners on the directory database (migration `0018_card_orders.sql`): an order
//! made for a person the HR feed brought in, fulfilled by their first card, cancelled if they leave.
use vigie_core::directory::DirectoryError;

use crate::SqlDirectory;
use crate::db::on_pool;
use crate::directory::failed;

/// A card order: the identity as sent to the ANS (CPS) or the card provider (CPE), and its status.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct CardOrder {
    /// Its id (a UUIDv7: sorts by time).
    pub id: String,
    /// The person (directory id).
    pub identity_id: String,
    /// HR matricule.
    pub matricule: String,
    /// Family name as HR writes it.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// `YYYY-MM-DD`, when HR gives it.
    pub birth_date: Option<String>,
    /// The idNat (`8`+RPPS for a CPS), when known at order time.
    pub idnat: Option<String>,
    /// HR's métier (the profession the order is for).
    pub metier: Option<String>,
    /// The structure the card is for (the establishment's FINESS), from the configuration.
    pub structure: Option<String>,
    /// `cps` or `cpe`.
    pub kind: String,
    /// `ordered`, `received` or `cancelled`.
    pub status: String,
    /// Why it was received or cancelled.
    pub reason: Option<String>,
    /// Who ordered it (`hr-feed:<run>`).
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// The statuses of an order, in life order.
pub const ORDER_STATUSES: [&str; 3] = ["ordered", "received", "cancelled"];

/// The columns of an order, in [`CardOrder`]'s order (a macro: sqlx takes only `&'static str`).
macro_rules! columns {
    () => {
        "id, identity_id, matricule, family_name, given_name, birth_date, idnat, metier, structure, \
         kind, status, reason, created_by, created_at, updated_at"
    };
}

impl SqlDirectory {
    /// Orders a card for the person with this matricule, of the kind `kind_of` gives for their
    /// métier (`None`: not eligible, no order). Nothing is made while they have an open order:
    /// running the same feed twice orders once.
    pub async fn order_card(
        &self,
        matricule: &str,
        kind_of: &dyn Fn(Option<&str>) -> Option<&'static str>,
        structure: Option<&str>,
        by: &str,
        now: &str,
    ) -> Result<Option<CardOrder>, DirectoryError> {
        let metier: Option<Option<String>> =
            on_pool!(self.pool, |c| sqlx::query_scalar("SELECT metier FROM identities WHERE matricule = $1")
                .bind(matricule)
                .fetch_optional(c)
                .await)
            .map_err(|e| failed("reading a joiner for a card order", &e))?;
        let Some(metier) = metier else { return Ok(None) };
        let Some(kind) = kind_of(metier.as_deref()) else { return Ok(None) };
        let id = uuid::Uuid::now_v7().to_string();
        // The partial unique index `card_orders_one_open` makes a second open order a no-op.
        let sql = concat!(
            "INSERT INTO card_orders (",
            columns!(),
            ") SELECT $1, i.id, i.matricule, i.family_name, i.given_name, i.birth_date, i.idnat, i.metier, $2, $3, \
                    'ordered', NULL, $4, $5, $5 FROM identities i WHERE i.matricule = $6 ON CONFLICT DO NOTHING"
        );
        let made = on_pool!(self.pool, |c| sqlx::query(sql)
            .bind(&id)
            .bind(structure)
            .bind(kind)
            .bind(by)
            .bind(now)
            .bind(matricule)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("ordering a card", &e))?;
        if made == 0 {
            return Ok(None);
        }
        Ok(self.card_orders(None, None).await?.into_iter().find(|o| o.id == id))
    }

    /// Moves the open order of a person (by matricule or directory id) to `received` or
    /// `cancelled`, with why: the order changed, or `None` when they had no open order.
    pub async fn settle_card_order(
        &self,
        person: &str,
        status: &str,
        reason: &str,
        now: &str,
    ) -> Result<Option<CardOrder>, DirectoryError> {
        debug_assert!(ORDER_STATUSES[1..].contains(&status));
        let sql = concat!(
            "UPDATE card_orders SET status = $1, reason = $2, updated_at = $3 \
             WHERE status = 'ordered' AND (identity_id = $4 OR matricule = $4) RETURNING ",
            columns!()
        );
        on_pool!(self.pool, |c| sqlx::query_as::<_, CardOrder>(sql)
            .bind(status)
            .bind(reason)
            .bind(now)
            .bind(person)
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("settling a card order", &e))
    }

    /// Marks received the open order of `identity_id` that the card registered at `registered_at`
    /// (a [`crate::lifecycle::stamp`], as the orders' own times) fulfils: an order of the card's
    /// `kind` (`cps`, `cpe`) placed at or before it. The order changed, or `None` (no such order:
    /// a CPE does not receive a CPS order, nor an older card an order made after it).
    pub async fn receive_card_order(
        &self,
        identity_id: &str,
        kind: &str,
        registered_at: &str,
        reason: &str,
        now: &str,
    ) -> Result<Option<CardOrder>, DirectoryError> {
        let sql = concat!(
            "UPDATE card_orders SET status = 'received', reason = $1, updated_at = $2 \
             WHERE status = 'ordered' AND identity_id = $3 AND kind = $4 AND created_at <= $5 RETURNING ",
            columns!()
        );
        on_pool!(self.pool, |c| sqlx::query_as::<_, CardOrder>(sql)
            .bind(reason)
            .bind(now)
            .bind(identity_id)
            .bind(kind)
            .bind(registered_at)
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("receiving a card order", &e))
    }

    /// Orders, newest first: all, or those in `status`, or a person's.
    pub async fn card_orders(
        &self,
        status: Option<&str>,
        identity_id: Option<&str>,
    ) -> Result<Vec<CardOrder>, DirectoryError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM card_orders WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR identity_id = $2) \
             ORDER BY created_at DESC, id DESC"
        );
        on_pool!(self.pool, |c| sqlx::query_as::<_, CardOrder>(sql).bind(status).bind(identity_id).fetch_all(c).await)
            .map_err(|e| failed("reading the card orders", &e))
    }
}
