//! The `warren:` scheme: Warren's internal pages, compiled into the renderer from `resources/`.

use std::borrow::Cow;

use wry::http::{self, header, Request, Response, StatusCode};

/// The new-tab page, served at `warren://newtab/`.
const NEW_TAB_HTML: &[u8] = include_bytes!("../../resources/newtab.html");

/// The page served for any internal address that does not exist.
const NOT_FOUND_HTML: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Not found</title></head>\n<body><h1>Not found</h1><p>Warren has no internal page at this address.</p></body></html>\n";

/// Internal pages run no remote content: they may load only from their own scheme, inline
/// styles and scripts included.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self' 'unsafe-inline' data:; connect-src 'none'; frame-ancestors 'none'";

/// One internal page: its status and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub status: StatusCode,
    pub body: &'static [u8],
}

/// Finds the internal page for a `warren:` URI such as `warren://newtab/`.
pub fn page_for(uri: &http::Uri) -> Page {
    let host = uri.host().unwrap_or_default();
    let path = uri.path();
    match (host, path) {
        ("newtab", "" | "/") => Page {
            status: StatusCode::OK,
            body: NEW_TAB_HTML,
        },
        _ => Page {
            status: StatusCode::NOT_FOUND,
            body: NOT_FOUND_HTML.as_bytes(),
        },
    }
}

/// The wry custom-protocol handler for the `warren` scheme.
pub fn handle(request: &Request<Vec<u8>>) -> Response<Cow<'static, [u8]>> {
    let page = page_for(request.uri());
    if page.status != StatusCode::OK {
        log::info!(target: "renderer", "no internal page at {}", request.uri());
    }
    Response::builder()
        .status(page.status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .body(Cow::Borrowed(page.body))
        .unwrap_or_else(|e| {
            // The builder only fails on invalid header values, and ours are constants.
            log::error!(target: "renderer", "cannot build the internal page response: {e}");
            Response::new(Cow::Borrowed(NOT_FOUND_HTML.as_bytes()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn new_tab_page_is_served() {
        let page = page_for(&uri(warren_ipc::NEW_TAB_URL));
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body, NEW_TAB_HTML);
        assert_eq!(page_for(&uri("warren://newtab")).status, StatusCode::OK);
    }

    #[test]
    fn unknown_internal_pages_are_404() {
        for u in [
            "warren://newtab/x",
            "warren://settings/",
            "warren://newtab/../etc/passwd",
        ] {
            assert_eq!(page_for(&uri(u)).status, StatusCode::NOT_FOUND, "{u}");
        }
    }

    #[test]
    fn response_has_type_and_policy() {
        let request = Request::builder()
            .uri("warren://newtab/")
            .body(Vec::new())
            .unwrap();
        let response = handle(&request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
