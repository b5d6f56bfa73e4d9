//! The profile: the test clients, users and means of identification a run uses (a small TOML
//! file the auditor writes, or one made from the embedded demo's `demo.json`).
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the kit may use on the target.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Profile {
    /// The confidential client the OpenID Connect plan logs in to (a non-sensitive one).
    pub rp_client: String,
    /// The DPI client (a sensitive service of the RIE, allowed to exchange tokens for a VIHF).
    #[serde(default)]
    pub dpi_client: Option<String>,
    /// The client Pro Santé Connect uses when Vigie is its FI tiers.
    #[serde(default)]
    pub fi_tiers_client: Option<String>,
    /// The `tid` registered with the ANS for the FI-tiers client (checked when given).
    #[serde(default)]
    pub fi_tiers_tid: Option<String>,
    /// The CA of the establishment's seal (ORG_SIGN) that signs VIHFs (PEM): the DMP plan
    /// verifies them against it.
    #[serde(default)]
    pub dmp_seal_ca_pem: Option<String>,
    /// A test patient's INS-NIR the DMP plan asks VIHFs for.
    #[serde(default)]
    pub dmp_patient_ins: Option<String>,
    pub clients: Vec<Client>,
    pub users: Vec<User>,
    #[serde(default)]
    pub card: Option<Card>,
    /// How the RIE table's FIDO2 rows get a key: `account` (default) enrols the kit's software
    /// key on `/account/keys` after a password + TOTP login of a profile user, and revokes it
    /// after; `none` enrols nothing (the rows are then not applicable, saying so).
    #[serde(default)]
    pub fido2_enrolment: Fido2Enrolment,
    /// A test model's batch attestation for the hardware-key row (`hwk`): the target must list
    /// its root in `webauthn.attestation_ca_files`; without it the row is not applicable.
    #[serde(default)]
    pub fido2_attestation: Option<Fido2Attestation>,
}

/// A test FIDO2 model: the batch attestation certificate and key its registrations are signed
/// with (format "packed", WebAuthn §8.2), and its AAGUID (the certificate's
/// `id-fido-gen-ce-aaguid`, §8.2.1).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Fido2Attestation {
    pub cert_pem: String,
    pub key_pem: String,
    pub aaguid: String,
    /// `packed` (the default); `none` makes the same key withhold its attestation, as a browser
    /// asked for none does: a correct target then counts it as software (the row's proof).
    #[serde(default = "packed")]
    pub format: String,
}

fn packed() -> String {
    "packed".into()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fido2Enrolment {
    #[default]
    Account,
    None,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Client {
    pub id: String,
    #[serde(default)]
    pub secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    pub auth_method: String,
    pub redirect_uri: String,
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
    /// A sensitive service of the RIE (its rules ask for a MIE of the RIE).
    #[serde(default)]
    pub sensitive: bool,
    /// Where the kit receives what the target POSTs to this client's registered
    /// `backchannel_logout_uri` (e.g. `127.0.0.1:8770` for `http://127.0.0.1:8770/backchannel`).
    #[serde(default)]
    pub backchannel_logout_listen: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct User {
    pub username: String,
    pub password: String,
    /// RFC 4648 base32, as an authenticator app takes it.
    pub totp_secret: String,
}

/// A test CPS/CPE card: its certificate chain and private key (PEM).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Card {
    pub username: String,
    pub chain_pem: String,
    pub key_pem: String,
}

impl Profile {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Profile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the profile {}", path.display()))?;
        let p: Profile = toml::from_str(&text).with_context(|| format!("{} is not a valid profile", path.display()))?;
        p.check()?;
        Ok(p)
    }

    /// Refuses a profile the plans could not use, naming what to add.
    pub fn check(&self) -> anyhow::Result<()> {
        let rp = self.client(&self.rp_client)?;
        if !matches!(rp.auth_method.as_str(), "client_secret_basic" | "client_secret_post") || rp.secret.is_none() {
            bail!("rp_client {:?} must be a client with a secret (client_secret_basic or client_secret_post)", rp.id);
        }
        if self.users.is_empty() {
            bail!("the profile names no test user: add a [[users]] with username, password and totp_secret");
        }
        for id in self.dpi_client.iter().chain(&self.fi_tiers_client) {
            self.client(id)?;
        }
        if let Some(a) = &self.fido2_attestation {
            if !matches!(a.format.as_str(), "packed" | "none") {
                bail!("fido2_attestation.format is {:?}: \"packed\" (the default) or \"none\"", a.format);
            }
            crate::softkey::Attestor::from_pem(&a.cert_pem, &a.key_pem, &a.aaguid)?;
        }
        Ok(())
    }

    pub fn client(&self, id: &str) -> anyhow::Result<&Client> {
        self.clients
            .iter()
            .find(|c| c.id == id)
            .with_context(|| format!("the profile names client {id:?} but has no [[clients]] with that id"))
    }

    /// A profile from the embedded demo's `demo.json` (what `vigie serve` writes).
    pub fn from_demo(demo: &Value) -> anyhow::Result<Profile> {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let clients = demo["clients"]
            .as_array()
            .context("demo.json has no clients")?
            .iter()
            .filter_map(|c| {
                Some(Client {
                    id: s(&c["client_id"])?,
                    secret: s(&c["client_secret"]),
                    auth_method: s(&c["auth_method"])?,
                    redirect_uri: s(&c["redirect_uris"][0])?,
                    post_logout_redirect_uri: s(&c["post_logout_redirect_uris"][0]),
                    sensitive: c["sensitive"].as_bool().unwrap_or(false),
                    backchannel_logout_listen: c["backchannel_logout_uri"].as_str().and_then(loopback_listen),
                })
            })
            .collect::<Vec<_>>();
        let users_json = demo["users"].as_array().context("demo.json has no users")?;
        let users = users_json
            .iter()
            .filter_map(|u| {
                Some(User {
                    username: s(&u["username"])?,
                    password: s(&u["password"])?,
                    totp_secret: s(&u["totp_secret"])?,
                })
            })
            .collect();
        let card = users_json.iter().find_map(|u| {
            Some(Card {
                username: s(&u["username"])?,
                chain_pem: s(&u["card"]["chain_pem"])?,
                key_pem: s(&u["card"]["key_pem"])?,
            })
        });
        let has = |id: &str| clients.iter().any(|c| c.id == id);
        let dpi = demo["dmp"]["token_exchange"]["client_id"].as_str().filter(|id| has(id)).map(str::to_owned);
        let fi = demo["clients"].as_array().and_then(|cs| cs.iter().find(|c| c["fi_tiers"].is_object()));
        let p = Profile {
            rp_client: "demo-app".into(),
            dpi_client: dpi,
            fi_tiers_client: fi.and_then(|c| s(&c["client_id"])),
            fi_tiers_tid: fi.and_then(|c| s(&c["fi_tiers"]["tid"])),
            dmp_seal_ca_pem: s(&demo["dmp"]["seal_ca_pem"]),
            dmp_patient_ins: s(&demo["dmp"]["token_exchange"]["example_patient_ins"]),
            clients,
            users,
            card,
            // The demo lets a fresh password + TOTP login add a key on the account page.
            fido2_enrolment: Fido2Enrolment::Account,
            // The demo asks for no attestation (`webauthn.attestation = "none"`): no test model.
            fido2_attestation: None,
        };
        p.check()?;
        Ok(p)
    }
}

/// `host:port` of a plain-HTTP loopback URI (where the kit itself can listen), else `None`: a
/// back-channel URI served elsewhere (the demo app's, inside the gateway) is not the kit's.
fn loopback_listen(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    let host = u.host_str()?;
    let loopback = matches!(host, "127.0.0.1" | "[::1]" | "localhost");
    (u.scheme() == "http" && loopback).then(|| format!("{host}:{}", u.port_or_known_default().unwrap_or(80)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_plain_http_loopback_uri_is_a_place_to_listen() {
        assert_eq!(super::loopback_listen("http://127.0.0.1:8770/backchannel").as_deref(), Some("127.0.0.1:8770"));
        assert_eq!(super::loopback_listen("https://localhost:8443/demo-app/backchannel-logout"), None);
        assert_eq!(super::loopback_listen("http://app.example/backchannel"), None);
    }
}
