//! The code flow as a relying party and a user drive it: authorization requests with PKCE,
//! the login form (password + TOTP), token requests; shared by the plans.
use std::collections::BTreeMap;

use anyhow::{Context, bail, ensure};
use tokio::sync::Mutex;

use crate::agent::{Agent, Resp, random, sha256_b64};
use crate::profile::{Client, Profile, User};

/// What every module reads: the agent, the profile, and the run's first login (kept so that
/// the modules that need a session do not each log in).
pub struct Ctx {
    pub agent: Agent,
    pub profile: Profile,
    pub ca_pem: Option<String>,
    first: Mutex<Option<(Browser, Tokens, Authz)>>,
}

/// A browser: a cookie jar over the agent.
#[derive(Clone)]
pub struct Browser {
    pub agent: Agent,
    pub cookies: BTreeMap<String, String>,
}

/// An authorization request of the code flow with PKCE, state and nonce.
#[derive(Clone, Debug)]
pub struct Authz {
    /// The client as the profile names it (its registered redirect URI is the request's).
    pub client: Client,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub params: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub id: String,
}

impl Tokens {
    pub fn of(r: &Resp) -> anyhow::Result<Tokens> {
        ensure!(r.status == 200, "the token endpoint answered {} to a valid request: {}", r.status, r.body);
        let j = r.json();
        let s = |k: &str| j[k].as_str().map(str::to_owned);
        Ok(Tokens {
            access: s("access_token").context("no access_token in the token response")?,
            refresh: s("refresh_token"),
            id: s("id_token").context("no id_token in the token response (scope openid)")?,
        })
    }
}

/// Sets the request parameter `k` to `v`, replacing it if present (shared with the gateway's
/// integration tests, whose requests are built the same way).
pub fn set_param(params: &mut Vec<(String, String)>, k: &str, v: &str) {
    match params.iter_mut().find(|(n, _)| n == k) {
        Some(p) => p.1 = v.into(),
        None => params.push((k.into(), v.into())),
    }
}

/// The authorization request's URL: the endpoint with `params` in its query.
pub fn authorize_url(endpoint: &str, params: &[(String, String)]) -> String {
    let mut u = url::Url::parse(endpoint).expect("the target is a URL");
    u.query_pairs_mut().extend_pairs(params.iter());
    u.to_string()
}

impl Authz {
    pub fn new(client: &Client) -> Authz {
        let (state, nonce, verifier) = (random(12), random(12), random(32));
        let params = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client.id.clone()),
            ("redirect_uri".into(), client.redirect_uri.clone()),
            ("scope".into(), "openid profile offline_access".into()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("code_challenge".into(), sha256_b64(&verifier)),
            ("code_challenge_method".into(), "S256".into()),
        ];
        Authz { client: client.clone(), state, nonce, verifier, params }
    }
    pub fn with(mut self, k: &str, v: &str) -> Authz {
        set_param(&mut self.params, k, v);
        self
    }
    pub fn without(mut self, k: &str) -> Authz {
        self.params.retain(|(n, _)| n != k);
        self
    }
    pub fn url(&self, agent: &Agent) -> String {
        authorize_url(&agent.url("/authorize"), &self.params)
    }
}

impl Browser {
    pub async fn get(&mut self, url: &str) -> anyhow::Result<Resp> {
        let req = self.with_cookies(self.agent.get(url));
        let r = self.agent.send(req, None).await?;
        self.remember(&r);
        Ok(r)
    }
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> anyhow::Result<Resp> {
        let req = self.with_cookies(self.agent.post(url));
        let r = self.agent.send(req, Some(form)).await?;
        self.remember(&r);
        Ok(r)
    }
    fn with_cookies(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.cookies.is_empty() {
            return req;
        }
        req.header("cookie", self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }
    fn remember(&mut self, r: &Resp) {
        for c in r.set_cookies() {
            let mut parts = c.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { continue };
            if parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0")) || value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().into(), value.trim().into());
            }
        }
    }

    /// Submits the login form at `location` (`/login?flow=…`) with password + TOTP.
    pub async fn submit_login(&mut self, location: &str, user: &User, code: &str) -> anyhow::Result<Resp> {
        let page = self.get(location).await?;
        ensure!(page.status == 200, "the login page answered {}", page.status);
        let flow = page.hidden("flow").context("the login page has no hidden `flow` input")?;
        let csrf = page.hidden("csrf").context("the login page has no hidden `csrf` input (CSRF protection)")?;
        self.post_form(
            "/login/password",
            &[
                ("flow", &flow),
                ("csrf", &csrf),
                ("username", &user.username),
                ("password", &user.password),
                ("totp", code),
            ],
        )
        .await
    }

    /// Authorization request → login page → password + TOTP; the gateway's last answer.
    pub async fn login(&mut self, a: &Authz, users: &[User]) -> anyhow::Result<Resp> {
        let r = self.get(&a.url(&self.agent)).await?;
        ensure!(r.status == 303 || r.status == 302, "the authorization request answered {}, not a redirect", r.status);
        let to = r.location();
        ensure!(to.contains("/login?flow="), "the authorization request did not lead to the login page but to {to}");
        self.submit_fresh(&to, users).await
    }

    /// Submits the login form with a code the kit has not sent yet. The target also refuses
    /// codes an earlier run sent (each is accepted once): a 401 is retried with the next code,
    /// a few times, before it counts as the target's answer.
    pub async fn submit_fresh(&mut self, location: &str, users: &[User]) -> anyhow::Result<Resp> {
        let mut attempt = 0;
        loop {
            let (user, code) = self.agent.fresh_totp(users).await?;
            let r = self.submit_login(location, user, &code).await?;
            attempt += 1;
            if r.status != 401 || attempt == 4 {
                return Ok(r);
            }
        }
    }

    /// [`Browser::login`] that must end at the client with a code; returns the redirect's query.
    pub async fn sign_in(&mut self, a: &Authz, users: &[User]) -> anyhow::Result<BTreeMap<String, String>> {
        let done = self.login(a, users).await?;
        code_of(&done, a)
    }
}

/// The query of a redirect to the client that carries a code (and the request's state).
pub fn code_of(r: &Resp, a: &Authz) -> anyhow::Result<BTreeMap<String, String>> {
    ensure!(r.status == 303 || r.status == 302, "expected a redirect to the client, got {}", r.status);
    ensure!(r.location().starts_with(&a.client.redirect_uri), "redirected to {}, not to the client", r.location());
    let p = r.redirect_params();
    if let Some(e) = p.get("error") {
        bail!("the client got error={e} ({})", p.get("error_description").cloned().unwrap_or_default());
    }
    ensure!(p.get("state") == Some(&a.state), "the state did not come back unchanged (OIDC Core §3.1.2.5)");
    ensure!(p.contains_key("code"), "no code in the redirect to the client");
    Ok(p)
}

/// Fails unless `r` is the OAuth error `error` (RFC 6749 §5.2: 400 with that `error`).
pub fn refused_with(r: &Resp, error: &str, what: &str) -> anyhow::Result<()> {
    ensure!(
        r.status == 400 && r.json()["error"] == error,
        "{what} was answered {} {} (expected 400 {error})",
        r.status,
        r.body
    );
    Ok(())
}

impl Ctx {
    pub fn new(agent: Agent, profile: Profile, ca_pem: Option<String>) -> Ctx {
        Ctx { agent, profile, ca_pem, first: Mutex::new(None) }
    }

    pub fn browser(&self) -> Browser {
        Browser { agent: self.agent.clone(), cookies: BTreeMap::new() }
    }

    pub fn rp(&self) -> &Client {
        self.profile.client(&self.profile.rp_client).expect("checked when the profile was loaded")
    }

    /// What the target says of its version: `/version` if it answers JSON, else `server`.
    pub async fn target_version(&self) -> Option<String> {
        let r = self.agent.send(self.agent.get("/version"), None).await.ok()?;
        let _ = self.agent.take_evidence();
        if r.status == 200 {
            return Some(r.body.chars().take(200).collect());
        }
        r.header("server").map(str::to_owned)
    }

    /// A token request as `client` authenticates (secret basic or post).
    pub async fn token(&self, client: &Client, params: &[(&str, &str)]) -> anyhow::Result<Resp> {
        let secret = client.secret.clone().unwrap_or_default();
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut req = self.agent.post("/token");
        if client.auth_method == "client_secret_post" {
            form.push(("client_id", &client.id));
            form.push(("client_secret", &secret));
        } else {
            req = req.basic_auth(&client.id, Some(&secret));
        }
        self.agent.send(req, Some(&form)).await
    }

    pub async fn redeem(&self, a: &Authz, code: &str) -> anyhow::Result<Resp> {
        self.token(
            &a.client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &a.client.redirect_uri),
                ("code_verifier", &a.verifier),
            ],
        )
        .await
    }

    /// The run's first login to the RP client: a browser with a session, its tokens, its request.
    pub async fn first_login(&self) -> anyhow::Result<(Browser, Tokens, Authz)> {
        let mut first = self.first.lock().await;
        if let Some(f) = first.as_ref() {
            return Ok(f.clone());
        }
        let mut b = self.browser();
        let a = Authz::new(self.rp());
        let p = b.sign_in(&a, &self.profile.users).await?;
        let t = Tokens::of(&self.redeem(&a, &p["code"]).await?)?;
        *first = Some((b.clone(), t.clone(), a.clone()));
        Ok((b, t, a))
    }

    /// A card login for the request `a`: the test card as the TLS client certificate, the login
    /// page's card button, the code redeemed; the tokens.
    pub async fn card_tokens(&self, card: &crate::profile::Card, a: &Authz) -> anyhow::Result<Tokens> {
        let agent = self.agent.with_card(self.ca_pem.as_deref(), &card.chain_pem, &card.key_pem)?;
        let mut b = Browser { agent, cookies: BTreeMap::new() };
        let r = b.get(&a.url(&b.agent)).await?;
        let to = r.location();
        ensure!(
            to.contains("/login?flow="),
            "the authorization request of {} did not lead to the login page but to {} {to}",
            a.client.id,
            r.status
        );
        let flow = crate::agent::query_of(&to).get("flow").cloned().unwrap_or_default();
        let done = b.get(&format!("/login/cps?flow={flow}")).await?;
        let p = code_of(&done, a)?;
        Tokens::of(&self.redeem(a, &p["code"]).await?)
    }

    /// Keeps `b`'s cookies as the run's session (after a module logged in again with it: the
    /// gateway may replace the session then).
    pub async fn keep_session(&self, b: &Browser) {
        if let Some(f) = self.first.lock().await.as_mut() {
            f.0.cookies = b.cookies.clone();
        }
    }

    /// With the first login's session, a code obtained without logging in again (SSO).
    pub async fn sso_code(&self, a: &Authz) -> anyhow::Result<String> {
        let (mut b, _, _) = self.first_login().await?;
        let r = b.get(&a.url(&self.agent)).await?;
        Ok(code_of(&r, a)?["code"].clone())
    }

    /// A code by SSO for a new request of the RP client, and its tokens.
    pub async fn sso_tokens(&self) -> anyhow::Result<(Authz, String, Tokens)> {
        let a = Authz::new(self.rp());
        let code = self.sso_code(&a).await?;
        let t = Tokens::of(&self.redeem(&a, &code).await?)?;
        Ok((a, code, t))
    }

    /// Whether userinfo refuses `access` (401) within 5 s: a revocation a store propagates
    /// may take a moment to reach every replica.
    pub async fn access_token_refused(&self, access: &str) -> anyhow::Result<bool> {
        for _ in 0..20 {
            if self.userinfo_get(access).await?.status == 401 {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        Ok(false)
    }

    pub async fn userinfo_get(&self, access: &str) -> anyhow::Result<Resp> {
        self.agent.send(self.agent.get("/userinfo").bearer_auth(access), None).await
    }

    pub async fn discovery(&self) -> anyhow::Result<serde_json::Value> {
        let r = self.agent.send(self.agent.get("/.well-known/openid-configuration"), None).await?;
        ensure!(r.status == 200, "the discovery document answered {}", r.status);
        Ok(r.json())
    }
}
