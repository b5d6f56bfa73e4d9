//! The one FR/EN mechanism: French first, English on request (`?lang=en`, `ui_locales`, or
//! `Accept-Language`), every choice of words through [`tr`]. A leaf, so that configuration types
//! (the sponsorship questions) can speak both languages without reaching the pages.
use actix_web::HttpRequest;
use actix_web::http::header;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// The BCP 47 tag of the language, for `<html lang>` and links to the other language.
    pub fn code(self) -> &'static str {
        tr(self, "fr", "en")
    }

    /// The language a page offers to switch to.
    pub fn other(self) -> Lang {
        tr(self, Lang::En, Lang::Fr)
    }

    /// The language's name in itself, for the link that switches to it.
    pub fn name(self) -> &'static str {
        tr(self, "Français", "English")
    }
}

/// `fr` or `en`, whichever is in `l`: words, tables of texts, configured questions alike.
pub fn tr<T>(l: Lang, fr: T, en: T) -> T {
    match l {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

fn lang_from_tags(tags: &str) -> Option<Lang> {
    tags.split([',', ' ']).map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).find_map(|t| {
        if t.starts_with("fr") {
            Some(Lang::Fr)
        } else if t.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    })
}

/// `?lang=` first, then the request's `ui_locales`, then `Accept-Language`; French otherwise.
pub fn lang(req: &HttpRequest, ui_locales: Option<&str>) -> Lang {
    let q = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned());
    q.as_deref()
        .and_then(lang_from_tags)
        .or_else(|| ui_locales.and_then(lang_from_tags))
        .or_else(|| req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(lang_from_tags))
        .unwrap_or(Lang::Fr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_pick_french_or_english() {
        assert_eq!(lang_from_tags("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(lang_from_tags("fr-FR"), Some(Lang::Fr));
        assert_eq!(lang_from_tags("de-DE, en;q=0.5"), Some(Lang::En));
        assert_eq!(lang_from_tags("de"), None);
    }

    proptest::proptest! {
        #[test]
        fn language_tag_parsing_never_panics(s in "\\PC{0,100}") {
            let _ = lang_from_tags(&s);
        }
    }
}
