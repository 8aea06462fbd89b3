//! The built-in web client served at `/` by the HTTP listener: a page, a
//! script and a style sheet under `web/`, embedded in the binary. The page
//! talks IRC over the same listener's WebSocket (docs/web.md).

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// What the page may load: its own script and style sheet, and a
/// connection to its own origin (`'self'` covers `ws:`/`wss:` to the same
/// host and port); no inline code, no frames, no forms sent elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../web/index.html"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../web/app.js"),
};
const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../web/app.css"),
};

/// The file served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    match path {
        "/" | "/index.html" => Some(&INDEX),
        "/app.js" => Some(&SCRIPT),
        "/app.css" => Some(&STYLE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        let page = std::str::from_utf8(asset("/").unwrap().body).unwrap();
        assert!(page.contains(r#"src="/app.js""#));
        assert!(page.contains(r#"href="/app.css""#));
        assert!(!page.contains("<script>"), "inline script breaks the CSP");
        assert!(asset("/nope").is_none());
    }
}
