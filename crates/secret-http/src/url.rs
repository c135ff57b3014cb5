//! Server URLs: the base-URL check and the plain-http-only-to-loopback guard.

use std::net::IpAddr;

use http::Uri;

use crate::{HttpError, Setting};

/// Whether `host` is `localhost`, in 127.0.0.0/8 or `::1`.
///
/// `host` is a bare host as [`Uri::host`] gives it: IPv6 addresses may keep their brackets
/// (`[::1]`). No port.
///
/// ```
/// use secret_http::is_loopback;
///
/// assert!(is_loopback("127.1.2.3") && is_loopback("[::1]") && is_loopback("LocalHost"));
/// assert!(!is_loopback("10.0.0.1") && !is_loopback("localhost.example"));
/// ```
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses and checks a server's base URL: `http(s)://host[:port][/path]`, no
/// `user:password@` part, no query, and plain `http://` only to a [loopback](is_loopback)
/// host unless `allow_insecure_http`. Surrounding whitespace is ignored.
///
/// # Errors
/// [`HttpError::Config`] about [`Setting::Url`] for a malformed URL, and
/// [`HttpError::InsecureHttp`] for plain `http://` to another host.
///
/// ```
/// use secret_http::base_url;
///
/// assert!(base_url("https://bao.internal:8200/prefix/", false).is_ok());
/// assert!(base_url("http://127.0.0.1:8200", false).is_ok());
/// assert_eq!(base_url("http://bao.internal", false).unwrap_err().code(), "INSECURE_HTTP");
/// assert_eq!(base_url("https://bao.internal?x=1", false).unwrap_err().code(), "CONFIG");
/// ```
pub fn base_url(text: &str, allow_insecure_http: bool) -> Result<Uri, HttpError> {
    let uri: Uri = text
        .trim()
        .parse()
        .map_err(|e| HttpError::config_from(Setting::Url, "is not a URL", e))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(HttpError::config(Setting::Url, "has no host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(HttpError::config(
            Setting::Url,
            "must not carry user:password@ credentials",
        ));
    }
    if uri.query().is_some() {
        return Err(HttpError::config(Setting::Url, "must not have a query"));
    }
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme.eq_ignore_ascii_case("https") {
        Ok(uri)
    } else if scheme.eq_ignore_ascii_case("http") {
        if allow_insecure_http || is_loopback(host) {
            Ok(uri)
        } else {
            Err(HttpError::InsecureHttp)
        }
    } else {
        Err(HttpError::config(
            Setting::Url,
            "must be http:// or https://",
        ))
    }
}

/// The request-time guard: every request, not only the base URL, obeys the loopback rule (a
/// discovered endpoint cannot downgrade a client to plain HTTP elsewhere).
pub(crate) fn check_request(uri: &Uri, allow_insecure_http: bool) -> Result<(), HttpError> {
    let plain = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http"));
    if plain && !allow_insecure_http && !uri.host().is_some_and(is_loopback) {
        return Err(HttpError::InsecureHttp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "",
            "10.0.0.1",
            "bao.example",
            "localhost.example",
            "[::2]",
            "128.0.0.1",
            "127.0.0.1:80",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn base_urls() {
        for ok in [
            "http://127.0.0.1:8200",
            "http://127.1.2.3",
            "http://localhost:1/pdp/",
            "http://[::1]:8200",
            "HTTP://LOCALHOST",
            "https://bao.example",
            " https://proxy.example/vault/ ",
        ] {
            assert!(base_url(ok, false).is_ok(), "{ok}");
        }
        for (bad, code) in [
            ("http://10.0.0.1:8200", "INSECURE_HTTP"),
            ("http://bao.example", "INSECURE_HTTP"),
            ("ftp://127.0.0.1", "CONFIG"),
            ("bao:8200", "CONFIG"),
            ("https://", "CONFIG"),
            ("https://x?y=1", "CONFIG"),
            ("https://user:pass@bao.example", "CONFIG"),
            ("/relative", "CONFIG"),
        ] {
            let error = base_url(bad, false).err();
            assert_eq!(error.as_ref().map(HttpError::code), Some(code), "{bad}");
            if let Some(HttpError::Config { setting, .. }) = error {
                assert_eq!(setting, Setting::Url);
            }
        }
        assert!(base_url("http://bao.example", true).is_ok());
        let shown = base_url("https://user:s3cret@bao.example", false)
            .map_err(|e| format!("{e} {e:?}"))
            .err()
            .unwrap_or_default();
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn every_request_obeys_the_loopback_rule() {
        let uri = |s: &str| s.parse::<Uri>().unwrap_or_default();
        assert!(check_request(&uri("http://127.0.0.1:1/x"), false).is_ok());
        assert!(check_request(&uri("https://pdp.example/x"), false).is_ok());
        assert!(matches!(
            check_request(&uri("http://pdp.example/x"), false),
            Err(HttpError::InsecureHttp)
        ));
        assert!(check_request(&uri("http://pdp.example/x"), true).is_ok());
    }
}
