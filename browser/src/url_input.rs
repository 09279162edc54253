//! What the address bar, the control socket's `new_tab`/`navigate` and command-line URLs accept, and how it is normalised.
//!
//! Warren has no search engine (there is no network to reach one), so [`fixup`] either turns the
//! input into an absolute URL with a scheme the renderer may load, or says clearly why it can't:
//!
//! * an explicit `http:`, `https:`, `file:`, `data:`, `warren:` URL or `about:blank` is parsed and
//!   normalised; any other scheme (`javascript:`, `ftp:`, `chrome:` ...) is refused;
//! * a host name with a dot (`example.org`, `example.org:8080/x`) becomes `https://...`; `localhost`
//!   and IP literals (`127.0.0.1:8000`, `[::1]:8000`) become `http://...`, as they are usually a
//!   development server;
//! * an existing absolute path, `~/...`, or `./x` / `../x` (relative to the given directory)
//!   becomes a `file://` URL; a bare path that does not exist is an error, while an explicit
//!   `file:///missing` is accepted (WebKit shows its error page in the tab);
//! * anything else (words, single-label names, malformed hosts) is an error.
//!
//! [`fixup`] is idempotent: feeding it one of its own results gives the same URL back, so the
//! browser may apply it again to URLs that were already normalised elsewhere.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;
use url::Url;
use warren_ipc::{INTERNAL_SCHEME, MAX_URL_LEN, NEW_TAB_URL};

/// Schemes that are parsed as URLs and handed to the renderer as they are (after normalisation).
const ACCEPTED_SCHEMES: [&str; 6] = ["http", "https", "file", "data", "about", INTERNAL_SCHEME];

/// How much of the user's input an error message quotes.
const QUOTE_LEN: usize = 60;

/// Why some input can't be turned into a URL. The messages are shown to the user as they are
/// (address bar, control socket error reply, command line).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UrlInputError {
    /// Nothing but white space was typed.
    #[error("type an address, for example example.org, or a file path")]
    Empty,
    /// The input is longer than any URL Warren handles.
    #[error("the address is too long (more than {max} bytes)", max = MAX_URL_LEN)]
    TooLong,
    /// The input contains control characters (line breaks, tabs, NUL ...).
    #[error("the address contains control characters (line breaks, tabs ...); remove them")]
    ControlCharacters,
    /// An explicit scheme that Warren does not load.
    #[error(
        "unsupported scheme \"{0}:\"; Warren opens http:, https:, file:, data:, about:blank and warren: addresses"
    )]
    UnsupportedScheme(String),
    /// The input has a supported scheme but is not a valid URL, or names a host that can't be.
    #[error("\"{input}\" is not a valid address: {reason}")]
    Invalid { input: String, reason: String },
    /// The input looks like a file path, but nothing exists there.
    #[error("no such file: {}", .0.display())]
    NoSuchFile(PathBuf),
    /// The input is neither a URL, nor a host name, nor a path.
    #[error(
        "\"{0}\" is not an address, and Warren has no search engine; type a URL such as https://example.org/, a host name such as example.org, or a file path"
    )]
    NotAnAddress(String),
}

/// Turns what a user typed (or passed on the command line, or sent on the control socket) into a
/// normalised absolute URL. Relative paths (`./x`, `../x`) are resolved against `cwd`.
pub fn fixup(input: &str, cwd: &Path) -> Result<String, UrlInputError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(UrlInputError::Empty);
    }
    if input.len() > MAX_URL_LEN {
        return Err(UrlInputError::TooLong);
    }
    if input.chars().any(char::is_control) {
        return Err(UrlInputError::ControlCharacters);
    }

    let url = if looks_like_path(input) {
        file_url(input, cwd)?
    } else if let Some((scheme, rest)) = split_scheme(input) {
        let lower = scheme.to_ascii_lowercase();
        if ACCEPTED_SCHEMES.contains(&lower.as_str()) {
            explicit_url(input, &lower)?
        } else if rest.starts_with("//") {
            return Err(UrlInputError::UnsupportedScheme(quote(scheme)));
        } else if scheme.contains('.')
            || lower == "localhost"
            || is_port_like(rest.split(['/', '?', '#']).next().unwrap_or(""))
        {
            // `example.org:8080/x`, `localhost:8000`: the "scheme" is really a host.
            host_url(input)?
        } else {
            return Err(UrlInputError::UnsupportedScheme(quote(scheme)));
        }
    } else {
        host_url(input)?
    };

    if url.len() > MAX_URL_LEN {
        return Err(UrlInputError::TooLong);
    }
    Ok(url)
}

/// The text the address bar shows for a tab's URL: the new-tab page shows as an empty bar, so
/// the user can start typing at once.
pub fn display(url: &str) -> String {
    if url == NEW_TAB_URL {
        String::new()
    } else {
        url.to_owned()
    }
}

/// Whether the input is meant as a file path rather than a URL or host.
fn looks_like_path(input: &str) -> bool {
    input.starts_with('/')
        || input == "~"
        || input.starts_with("~/")
        || input == "."
        || input == ".."
        || input.starts_with("./")
        || input.starts_with("../")
}

/// Splits `scheme:rest` when the part before the first colon is syntactically a scheme
/// (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`).
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        Some((scheme, rest))
    } else {
        None
    }
}

/// Whether `s` is a decimal port number (1 to 5 digits).
fn is_port_like(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses an input that names one of the accepted schemes explicitly.
fn explicit_url(input: &str, scheme: &str) -> Result<String, UrlInputError> {
    let invalid = |reason: String| UrlInputError::Invalid {
        input: quote(input),
        reason,
    };
    let url = Url::parse(input).map_err(|e| invalid(e.to_string()))?;
    match scheme {
        "http" | "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("it has no host name".to_owned()));
            }
        }
        "file" => {
            if url.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(invalid(
                    "file URLs on another host are not supported; use file:///path".to_owned(),
                ));
            }
        }
        "about" => {
            if !url.as_str().eq_ignore_ascii_case("about:blank") {
                return Err(invalid("the only about: page is about:blank".to_owned()));
            }
            return Ok("about:blank".to_owned());
        }
        "data" => {}
        _ => {
            // Warren's internal pages: warren://newtab/ and its siblings.
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid(format!("internal pages look like {NEW_TAB_URL}")));
            }
        }
    }
    Ok(url.into())
}

/// Turns a path (absolute, `~/...`, `./x`, `../x`) into a `file://` URL if something exists there.
fn file_url(input: &str, cwd: &Path) -> Result<String, UrlInputError> {
    let path = if input == "~" || input.starts_with("~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| UrlInputError::Invalid {
                input: quote(input),
                reason: "$HOME is not set, so ~ can't be expanded".to_owned(),
            })?;
        home.join(input.trim_start_matches('~').trim_start_matches('/'))
    } else {
        // An absolute input replaces cwd entirely in `join`.
        cwd.join(input)
    };
    let path = normalize(&path);
    if !path.is_absolute() {
        return Err(UrlInputError::Invalid {
            input: quote(input),
            reason: "the current directory is not an absolute path".to_owned(),
        });
    }
    let meta = std::fs::metadata(&path).map_err(|_| UrlInputError::NoSuchFile(path.clone()))?;
    let url = if meta.is_dir() {
        Url::from_directory_path(&path)
    } else {
        Url::from_file_path(&path)
    };
    url.map(String::from).map_err(|()| UrlInputError::Invalid {
        input: quote(input),
        reason: "the path can't be expressed as a file URL".to_owned(),
    })
}

/// Removes `.` and resolves `..` lexically, as URL parsing does with a file URL's path.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `pop` refuses to go above the root, like `/..` in a URL.
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Turns `host[:port][/path][?query][#fragment]` into an http(s) URL, checking the host first so
/// that words and typos are refused instead of becoming a lookup of a nonsense host.
fn host_url(input: &str) -> Result<String, UrlInputError> {
    let split = input.find(['/', '?', '#']).unwrap_or(input.len());
    let (authority, tail) = input.split_at(split);
    let not_an_address = || UrlInputError::NotAnAddress(quote(input));
    let invalid = |reason: &str| UrlInputError::Invalid {
        input: quote(input),
        reason: reason.to_owned(),
    };

    if authority.is_empty() || authority.chars().any(char::is_whitespace) {
        return Err(not_an_address());
    }
    if authority.contains('@') {
        return Err(invalid(
            "user names in addresses are not supported; type the host name only",
        ));
    }

    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let (literal, after) = after_bracket
            .split_once(']')
            .ok_or_else(|| invalid("the IPv6 address has no closing ]"))?;
        literal
            .parse::<Ipv6Addr>()
            .map_err(|_| invalid("the IPv6 address in [ ] is malformed"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("unexpected text after the IPv6 address"))?,
            ),
        };
        (&authority[..after_bracket.len() - after.len() + 1], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if !is_port_like(port) || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(invalid("the port must be a number from 1 to 65535"));
        }
    }

    let scheme = match classify_host(host) {
        HostKind::Local => "http",
        HostKind::Domain => "https",
        HostKind::NotAHost => return Err(not_an_address()),
    };
    let url = Url::parse(&format!("{scheme}://{authority}{tail}"))
        .map_err(|e| invalid(&e.to_string()))?;
    Ok(url.into())
}

/// What kind of host a typed host name is.
enum HostKind {
    /// `localhost`, `*.localhost` and IP literals: loaded over http.
    Local,
    /// A dotted domain name: loaded over https.
    Domain,
    /// Not something we'd look up: a single word, empty labels, a numeric top-level label ...
    NotAHost,
}

fn classify_host(host: &str) -> HostKind {
    let lower = host.to_ascii_lowercase();
    let trimmed = lower.strip_suffix('.').unwrap_or(&lower);
    if trimmed == "localhost" || trimmed.ends_with(".localhost") || host.starts_with('[') {
        return HostKind::Local;
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return HostKind::Local;
    }
    let labels: Vec<&str> = trimmed.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    if labels.len() >= 2 && trimmed.len() <= 253 && labels.iter().all(label_ok) && tld_ok {
        HostKind::Domain
    } else {
        HostKind::NotAHost
    }
}

/// The input as quoted in an error message: shortened, so a huge paste doesn't flood the bar.
fn quote(input: &str) -> String {
    if input.chars().count() <= QUOTE_LEN {
        input.to_owned()
    } else {
        let mut s: String = input.chars().take(QUOTE_LEN).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, cwd: &Path) -> String {
        match fixup(input, cwd) {
            Ok(url) => url,
            Err(e) => panic!("{input:?} was refused: {e}"),
        }
    }

    #[test]
    fn accepted_inputs() {
        let cwd = Path::new("/");
        let table = [
            // Explicit schemes.
            ("https://example.org", "https://example.org/"),
            ("  https://example.org/a?b#c  ", "https://example.org/a?b#c"),
            ("HTTP://Example.ORG/Path", "http://example.org/Path"),
            ("http://localhost:8000/x", "http://localhost:8000/x"),
            ("http:example.org", "http://example.org/"),
            ("https://example.org/a b", "https://example.org/a%20b"),
            ("https://münchen.de/", "https://xn--mnchen-3ya.de/"),
            ("file:///etc/hostname", "file:///etc/hostname"),
            ("file:///definitely/missing", "file:///definitely/missing"),
            ("file://localhost/tmp/x", "file:///tmp/x"),
            ("data:text/html,<h1>hi</h1>", "data:text/html,<h1>hi</h1>"),
            ("about:blank", "about:blank"),
            ("ABOUT:BLANK", "about:blank"),
            ("warren://newtab/", "warren://newtab/"),
            ("warren://newtab", "warren://newtab"),
            // Host names become https.
            ("example.org", "https://example.org/"),
            ("Example.Org", "https://example.org/"),
            ("example.org/path", "https://example.org/path"),
            ("example.org?q=1", "https://example.org/?q=1"),
            ("example.org#top", "https://example.org/#top"),
            ("example.org:8080/x", "https://example.org:8080/x"),
            ("sub.example.org", "https://sub.example.org/"),
            ("example.org.", "https://example.org./"),
            (
                "my-host.example_net.org",
                "https://my-host.example_net.org/",
            ),
            ("münchen.de", "https://xn--mnchen-3ya.de/"),
            // Local development servers become http.
            ("localhost", "http://localhost/"),
            ("LOCALHOST:8000", "http://localhost:8000/"),
            ("localhost:8000/x", "http://localhost:8000/x"),
            ("app.localhost:3000", "http://app.localhost:3000/"),
            ("127.0.0.1", "http://127.0.0.1/"),
            ("127.0.0.1:8000", "http://127.0.0.1:8000/"),
            ("192.168.1.20:8080/a", "http://192.168.1.20:8080/a"),
            ("[::1]:8000", "http://[::1]:8000/"),
            ("[::1]", "http://[::1]/"),
            ("[::1]/x", "http://[::1]/x"),
            // Existing absolute paths become file URLs.
            ("/", "file:///"),
            ("/etc", "file:///etc/"),
            ("/etc/./hostname", "file:///etc/hostname"),
            ("/tmp/../etc/hostname", "file:///etc/hostname"),
        ];
        for (input, want) in table {
            assert_eq!(ok(input, cwd), want, "input {input:?}");
        }
    }

    #[test]
    fn refused_inputs() {
        use UrlInputError as E;
        let cwd = Path::new("/");
        let not = |s: &str| E::NotAnAddress(s.to_owned());
        let scheme = |s: &str| E::UnsupportedScheme(s.to_owned());
        let table = [
            ("", E::Empty),
            ("   \t ", E::Empty),
            ("foo", not("foo")),
            ("hello world", not("hello world")),
            ("what is example.org", not("what is example.org")),
            ("a..b", not("a..b")),
            (".example.org", not(".example.org")),
            ("example.", not("example.")),
            ("-bad.example.org", not("-bad.example.org")),
            ("exa$mple.org", not("exa$mple.org")),
            ("1.2.3", not("1.2.3")),
            ("999.1.1.1", not("999.1.1.1")),
            ("foo:8080", not("foo:8080")),
            ("javascript:alert(1)", scheme("javascript")),
            ("JavaScript:alert(1)", scheme("JavaScript")),
            ("ftp://example.org/", scheme("ftp")),
            ("chrome://settings", scheme("chrome")),
            ("view-source:https://example.org", scheme("view-source")),
            ("mailto:someone@example.org", scheme("mailto")),
            ("blob:https://example.org/x", scheme("blob")),
            ("foo.bar://x", scheme("foo.bar")),
            ("a\nb.org", E::ControlCharacters),
            ("example.org/\0", E::ControlCharacters),
            (
                "/definitely/missing/path",
                E::NoSuchFile(PathBuf::from("/definitely/missing/path")),
            ),
        ];
        for (input, want) in table {
            assert_eq!(fixup(input, cwd), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn refused_as_invalid() {
        let cwd = Path::new("/");
        for input in [
            "example.org:0",
            "example.org:99999",
            "example.org:abc",
            "example.org:",
            "localhost:",
            "user@example.org",
            "[::1",
            "[nonsense]:80",
            "[::1]x",
            "http://",
            "http://exa mple.org/",
            "http://[::1/",
            "about:config",
            "about:",
            "warren:newtab",
            "file://otherhost/etc/hostname",
        ] {
            match fixup(input, cwd) {
                Err(UrlInputError::Invalid { .. }) => {}
                other => panic!("{input:?} gave {other:?}, want Invalid"),
            }
        }
    }

    #[test]
    fn relative_paths_resolve_against_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir(base.join("sub")).unwrap();
        std::fs::write(base.join("page.html"), "<p>hi</p>").unwrap();
        std::fs::write(base.join("a b#c.html"), "x").unwrap();
        let sub = base.join("sub");
        let root = Url::from_directory_path(base).unwrap().to_string();

        assert_eq!(ok("./page.html", base), format!("{root}page.html"));
        assert_eq!(ok("../page.html", &sub), format!("{root}page.html"));
        assert_eq!(ok(".", base), root);
        assert_eq!(ok("..", &sub), root);
        assert_eq!(ok("./sub", base), format!("{root}sub/"));
        assert_eq!(ok("./a b#c.html", base), format!("{root}a%20b%23c.html"));
        let abs = base.join("page.html");
        assert_eq!(
            ok(abs.to_str().unwrap(), Path::new("/")),
            format!("{root}page.html")
        );
        assert_eq!(
            fixup("./missing.html", base),
            Err(UrlInputError::NoSuchFile(base.join("missing.html")))
        );
        // A bare name is a host name, never a file in cwd.
        assert_eq!(ok("page.html", base), "https://page.html/");
    }

    #[test]
    fn home_paths_expand() {
        // HOME is read, never changed, so this is safe beside other tests.
        let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
            return;
        };
        if !home.is_dir() {
            return;
        }
        let want = Url::from_directory_path(normalize(&home))
            .unwrap()
            .to_string();
        assert_eq!(ok("~", Path::new("/")), want);
        assert_eq!(ok("~/", Path::new("/")), want);
        assert!(matches!(
            fixup("~/definitely-missing-warren-file", Path::new("/")),
            Err(UrlInputError::NoSuchFile(_))
        ));
        assert!(matches!(
            fixup("~someone/x", Path::new("/")),
            Err(UrlInputError::NotAnAddress(_))
        ));
    }

    #[test]
    fn fixup_is_idempotent() {
        let cwd = Path::new("/");
        for input in [
            "example.org",
            "example.org:8080/a b?c#d",
            "localhost:8000/x",
            "[::1]:8000",
            "127.0.0.1",
            "/etc",
            "/etc/hostname",
            "file:///missing",
            "data:text/plain,hello world",
            "about:blank",
            "warren://newtab/",
            "münchen.de/ä",
        ] {
            let once = ok(input, cwd);
            assert_eq!(ok(&once, cwd), once, "input {input:?}");
        }
    }

    #[test]
    fn length_limits() {
        let cwd = Path::new("/");
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(fixup(&long, cwd), Err(UrlInputError::TooLong));
        // Percent-encoding may push a URL over the limit after parsing.
        let spaces = format!("https://example.org/{}", " x".repeat(MAX_URL_LEN / 4));
        assert!(spaces.len() < MAX_URL_LEN);
        assert_eq!(fixup(&spaces, cwd), Err(UrlInputError::TooLong));
    }

    #[test]
    fn messages_quote_briefly() {
        let long = format!("{} x", "word ".repeat(100));
        let msg = fixup(&long, Path::new("/")).unwrap_err().to_string();
        assert!(msg.len() < 300, "{msg}");
        assert!(msg.contains("no search engine"), "{msg}");
        let msg = fixup("javascript:alert(1)", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("unsupported scheme \"javascript:\""),
            "{msg}"
        );
    }

    #[test]
    fn display_hides_the_new_tab_page() {
        assert_eq!(display(NEW_TAB_URL), "");
        assert_eq!(display("https://example.org/"), "https://example.org/");
        assert_eq!(display("about:blank"), "about:blank");
    }
}
