//! A small static file server for a directory tree (the Rust documentation installed with the
//! toolchain), on 127.0.0.1.
//!
//! The harness's own server (`warren_tests::HttpServer`) serves fixed routes registered one by
//! one; a documentation page pulls in style sheets, scripts, fonts and a search index from all
//! over its tree, so the benchmark serves the directory itself. Every browser measured, Warren
//! and the peers alike, loads the same pages from it over HTTP.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running server; stopped on drop.
pub struct StaticServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Serves the files below `root` on a free port of 127.0.0.1, one thread per connection.
    pub fn start(root: &Path) -> std::io::Result<StaticServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("static-files".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let root = root.clone();
                    let _ = std::thread::Builder::new()
                        .name("static-file".into())
                        .spawn(move || serve(stream, &root));
                }
            })?;
        Ok(StaticServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The URL of `path` (relative to the root, `/`-separated).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request with the file it names, or 404 (also for anything that would leave the
/// root), and closes the connection.
fn serve(stream: TcpStream, root: &Path) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers: nothing in them changes the answer.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let file = resolve(root, target);
    let mut stream = stream;
    let body = match (method, file) {
        ("GET" | "HEAD", Some(file)) => std::fs::read(&file).ok().map(|b| (file, b)),
        _ => None,
    };
    let (status, content_type, body) = match body {
        Some((file, bytes)) => ("200 OK", content_type(&file), bytes),
        None => ("404 Not Found", "text/plain", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&body);
    }
    let _ = stream.flush();
}

/// The file a request target names below `root`: the query and fragment dropped, `%XX` decoded,
/// a directory's `index.html`; `None` for a path that climbs out (`..`) or names nothing.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut file = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    file.is_file().then_some(file)
}

/// The MIME type browsers need for what rustdoc's pages load (scripts and style sheets are refused
/// without the right one).
fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn resolves_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("std/vec")).unwrap();
        std::fs::write(dir.path().join("std/index.html"), "std").unwrap();
        std::fs::write(dir.path().join("std/vec/a b.html"), "ab").unwrap();
        let root = dir.path();
        assert_eq!(resolve(root, "/std/"), Some(root.join("std/index.html")));
        assert_eq!(
            resolve(root, "/std/vec/a%20b.html?search=x#top"),
            Some(root.join("std/vec/a b.html"))
        );
        assert_eq!(resolve(root, "/std/../std/index.html"), None);
        assert_eq!(resolve(root, "/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(root, "/missing.html"), None);
        assert_eq!(resolve(root, "/std/%zz"), None);
    }

    #[test]
    fn serves_files_with_their_type() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.css"), "body{}").unwrap();
        let server = StaticServer::start(dir.path()).unwrap();
        let get = |path: &str| {
            let url = server.url(path);
            let addr = url.trim_start_matches("http://").split('/').next().unwrap();
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            reply
        };
        let ok = get("/main.css");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains("Content-Type: text/css"), "{ok}");
        assert!(ok.ends_with("body{}"), "{ok}");
        assert!(get("/nothing").starts_with("HTTP/1.1 404"));
    }
}
