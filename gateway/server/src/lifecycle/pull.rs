//! The HR feed pulled over HTTPS (`lifecycle.hr_feed.url`): one conditional GET (RFC 9110
//! §13.1.1 `If-None-Match`, §13.1.3 `If-Modified-Since`) with the CA, the bearer token or basic
//! credentials and the timeout of the configuration. Its body goes through the same run as a file.
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::config::HrFeedConfig;

/// What the last pull that was applied got back to ask "changed since?" next time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` of the export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Its `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// The answer of one pull.
#[derive(Debug)]
pub enum Pulled {
    /// The export, and its validators.
    Export { text: String, validators: Validators },
    /// `304 Not Modified`: the export is the one already run.
    NotModified,
}

/// Checks `lifecycle.hr_feed.url`: HTTPS, and no credentials in it (they belong in a secret file,
/// not in a configuration that is logged and shown).
pub fn check_url(url: &str, err: &mut dyn FnMut(String)) {
    match reqwest::Url::parse(url) {
        Err(e) => err(format!("{e}: expected https://host/path of the HR export")),
        Ok(u) if u.scheme() != "https" => {
            err(format!("the scheme is {:?}: the HR export is pulled over https:// only", u.scheme()))
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            err("credentials in the URL: put them in `basic_auth_file` (or a token in `token_file`)".into())
        }
        Ok(_) => {}
    }
}

/// A secret file's content, trimmed; the error names the file and the key, never the content.
fn secret(path: &Path, key: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading `lifecycle.hr_feed.{key}` {}", path.display()))?;
    let text = text.trim().to_owned();
    anyhow::ensure!(!text.is_empty(), "`lifecycle.hr_feed.{key}` {} is empty", path.display());
    Ok(text)
}

/// The client of the pulls: the configured CA only when one is given.
pub fn client(feed: &HrFeedConfig) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(feed.timeout_secs))
        .connect_timeout(Duration::from_secs(feed.timeout_secs.min(30)))
        // A redirect could take the credentials elsewhere: the export is at the configured URL.
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true);
    if let Some(ca) = &feed.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading `lifecycle.hr_feed.ca_file` {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("`lifecycle.hr_feed.ca_file` {}: expected PEM certificates", ca.display()))?;
        anyhow::ensure!(!certs.is_empty(), "`lifecycle.hr_feed.ca_file` {} holds no certificate", ca.display());
        builder = builder.tls_certs_only(certs);
    }
    builder.build().context("building the HR feed's HTTPS client")
}

/// The files of an HTTPS pull read as a pull reads them (the CA, the token or the credentials), so
/// `serve` and `vigie check-config` refuse a bad one at start rather than at the first pull.
pub fn check_files(feed: &HrFeedConfig) -> anyhow::Result<()> {
    if feed.url.is_none() {
        return Ok(());
    }
    client(feed)?;
    if let Some(path) = &feed.token_file {
        secret(path, "token_file")?;
    }
    if let Some(path) = &feed.basic_auth_file {
        anyhow::ensure!(
            secret(path, "basic_auth_file")?.contains(':'),
            "`lifecycle.hr_feed.basic_auth_file` {}: expected one line `user:password`",
            path.display()
        );
    }
    Ok(())
}

/// Pulls the export at `url`, asking whether it changed since `since`.
pub async fn pull(
    client: &reqwest::Client,
    feed: &HrFeedConfig,
    url: &str,
    since: Option<&Validators>,
) -> anyhow::Result<Pulled> {
    let mut request = client.get(url).header(reqwest::header::ACCEPT, "text/csv, */*;q=0.5");
    if let Some(path) = &feed.token_file {
        request = request.bearer_auth(secret(path, "token_file")?);
    } else if let Some(path) = &feed.basic_auth_file {
        let text = secret(path, "basic_auth_file")?;
        let (user, password) = text.split_once(':').with_context(|| {
            format!("`lifecycle.hr_feed.basic_auth_file` {}: expected one line `user:password`", path.display())
        })?;
        request = request.basic_auth(user, Some(password));
    }
    if let Some(v) = since {
        if let Some(etag) = &v.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        // RFC 9110 §13.1.3: a recipient ignores If-Modified-Since when If-None-Match is there;
        // both are sent so a server that knows only dates still answers 304.
        if let Some(at) = &v.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, at);
        }
    }
    // The error is reqwest's without the URL's query (which might carry a key HR's server wants).
    let response = request.send().await.map_err(|e| anyhow::anyhow!("pulling the HR export: {}", e.without_url()))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Pulled::NotModified);
    }
    match status.as_u16() {
        200 => {}
        401 | 403 => anyhow::bail!(
            "the HR server refused the pull ({status}): check `lifecycle.hr_feed.token_file` or `basic_auth_file`"
        ),
        300..=399 => anyhow::bail!(
            "the HR server redirects the pull ({status}): set `lifecycle.hr_feed.url` to where the export is"
        ),
        _ => anyhow::bail!("the HR server answered {status} to the pull; nothing was applied"),
    }
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let validators =
        Validators { etag: header(reqwest::header::ETAG), last_modified: header(reqwest::header::LAST_MODIFIED) };
    let bytes = response.bytes().await.map_err(|e| anyhow::anyhow!("reading the HR export: {}", e.without_url()))?;
    let text = String::from_utf8(bytes.to_vec()).context("the HR export is not UTF-8 text")?;
    // An empty body is a broken export, not a hospital with nobody in it.
    anyhow::ensure!(!text.trim().is_empty(), "the HR server sent an empty export; nothing was applied");
    Ok(Pulled::Export { text, validators })
}

/// The name a run of `url` is recorded under: its last path segment, else its host.
pub fn name_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            let last = u.path_segments().and_then(|mut s| s.next_back()).filter(|s| !s.is_empty()).map(str::to_owned);
            last.or_else(|| u.host_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "hr-export".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(url: &str) -> Vec<String> {
        let mut found = Vec::new();
        check_url(url, &mut |m| found.push(m));
        found
    }

    #[test]
    fn only_https_urls_without_credentials_are_taken() {
        assert!(problems("https://sirh.chu.example/export/people.csv").is_empty());
        assert!(problems("http://sirh.chu.example/export.csv")[0].contains("https:// only"));
        assert!(problems("https://hr:secret@sirh.chu.example/x.csv")[0].contains("basic_auth_file"));
        assert!(!problems("sirh/export.csv").is_empty());
    }

    #[test]
    fn a_run_is_named_after_the_export() {
        assert_eq!(name_of("https://sirh.example/exports/people.csv?day=1"), "people.csv");
        assert_eq!(name_of("https://sirh.example/"), "sirh.example");
    }
}
