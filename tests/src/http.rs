//! A tiny HTTP/1.1 server on 127.0.0.1 for test pages: fixed routes, one thread per connection,
//! `Connection: close` on every reply, stopped on drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One registered page.
#[derive(Clone, Debug)]
pub struct Route {
    pub content_type: String,
    pub body: Vec<u8>,
    /// Extra response headers, e.g. `("Set-Cookie", "a=b; Max-Age=3600")`.
    pub headers: Vec<(String, String)>,
}

/// A request the server answered, for assertions (`Cookie` header and all).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    log: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

/// The server. Register pages with [`HttpServer::route`] or [`HttpServer::html`]; unknown paths
/// get 404.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local HTTP port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("http-server".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let conn_shared = Arc::clone(&accept_shared);
                    let _ = std::thread::Builder::new()
                        .name("http-conn".into())
                        .spawn(move || serve(stream, &conn_shared));
                }
            })
            .expect("spawn the HTTP server thread");
        HttpServer {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full URL of a path (which starts with '/').
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin(), path)
    }

    /// Registers (or replaces) a page.
    pub fn route(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) {
        let route = Route {
            content_type: content_type.to_string(),
            body: body.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.shared
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), route);
    }

    /// Registers a UTF-8 HTML page and returns its URL.
    pub fn html(&self, path: &str, html: &str) -> String {
        self.route(path, "text/html; charset=utf-8", html.as_bytes(), &[]);
        self.url(path)
    }

    /// Every request answered so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request on one connection, then closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    shared
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Request {
            method: method.clone(),
            path: path.clone(),
            headers,
        });
    let route = shared
        .routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&path)
        .cloned();
    let (status, route) = match route {
        Some(route) => ("200 OK", route),
        None => (
            "404 Not Found",
            Route {
                content_type: "text/plain; charset=utf-8".into(),
                body: b"not found".to_vec(),
                headers: Vec::new(),
            },
        ),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        route.content_type,
        route.body.len()
    );
    for (k, v) in &route.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&route.body);
    }
    let _ = stream.flush();
}

/// A page of one solid colour (CSS colour `css`) that fills the whole view, with a title.
pub fn solid_page(title: &str, css: &str) -> String {
    format!(
        "<!doctype html><html style=\"margin:0;padding:0;height:100%;background:{css}\">\
         <head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"margin:0;padding:0;height:100%;background:{css}\"></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(server: &HttpServer, path: &str, extra: &str) -> String {
        let mut s = TcpStream::connect(server.addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_routes_headers_and_404() {
        let server = HttpServer::start();
        server.route(
            "/a",
            "text/plain",
            "hello",
            &[("Set-Cookie", "k=v; Max-Age=60")],
        );
        let reply = get(&server, "/a?x=1", "Cookie: z=1\r\n");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("Set-Cookie: k=v; Max-Age=60\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\nhello"), "{reply}");
        assert!(get(&server, "/missing", "").starts_with("HTTP/1.1 404"));
        let log = server.requests();
        assert_eq!(log[0].path, "/a");
        assert_eq!(log[0].header("cookie"), Some("z=1"));
        drop(server);
    }
}
