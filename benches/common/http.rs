//! A minimal keep-alive HTTP/1.1 client for the benchmarks: requests, replies (chunked
//! too), streamed multipart uploads from a file, JSON helpers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// A raw HTTP/1.1 request.
pub fn request_bytes(method: &str, host: &SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    let _ = write!(out, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A JSON POST.
pub fn json_post(host: &SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    request_bytes("POST", host, path, &[("Content-Type", "application/json")], body)
}

/// A JSON POST with an optional `Authorization` header value.
pub fn json_post_as(host: &SocketAddr, path: &str, authorization: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = authorization {
        headers.push(("Authorization", a));
    }
    request_bytes("POST", host, path, &headers, body)
}

/// A reply: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// One keep-alive connection; reconnects when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections opened.
    pub connects: u64,
}

impl Conn {
    /// Not connected yet.
    pub fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None, buf: Vec::with_capacity(16 * 1024), connects: 0 }
    }

    /// Sends `raw` and reads the reply. A reused connection found closed is retried once
    /// on a new one (the server never saw the request).
    pub fn request(&mut self, raw: &[u8]) -> io::Result<Reply> {
        let reused = self.stream.is_some();
        match self.exchange(raw) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.stream = None;
                let stale = matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionAborted
                );
                if reused && stale && self.buf.is_empty() {
                    let r = self.exchange(raw);
                    if r.is_err() {
                        self.stream = None;
                    }
                    r
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Sends `head` (request line and headers, with the body's `Content-Length`), then
    /// copies `body` to the connection as it reads it, and reads the reply. Never
    /// retried: the body cannot be read twice.
    pub fn request_streaming(&mut self, head: &[u8], body: &mut dyn Read) -> io::Result<Reply> {
        let result = self.connect().and_then(|stream| {
            stream.write_all(head)?;
            io::copy(body, stream)?;
            Ok(())
        });
        match result.and_then(|()| self.read_reply()) {
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    fn connect(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            self.connects += 1;
            self.stream = Some(s);
        }
        self.stream.as_mut().ok_or_else(|| io::Error::other("not connected"))
    }

    fn exchange(&mut self, raw: &[u8]) -> io::Result<Reply> {
        self.connect()?.write_all(raw)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::other("not connected"))?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        // Headers.
        let header_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a reply"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|_| bad_reply("non-UTF-8 headers"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 =
            status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad_reply(status_line))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| bad_reply("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else if chunked {
            loop {
                if let Some(body) = dechunk(&self.buf[header_end..])? {
                    break body;
                }
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside a chunked body"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(len) = length {
            while self.buf.len() < header_end + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed inside the body"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            self.buf[header_end..header_end + len].to_vec()
        } else {
            close = true;
            stream.read_to_end(&mut self.buf)?;
            self.buf[header_end..].to_vec()
        };
        if close {
            self.stream = None;
        }
        self.buf.clear();
        Ok(Reply { status, body })
    }
}

fn bad_reply(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP reply: {what}"))
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a complete chunked message, or `None` if more bytes are needed.
fn dechunk(mut data: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else { return Ok(None) };
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| bad_reply("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad_reply("chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            return Ok(find(data, b"\r\n").map(|_| body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A `multipart/form-data` POST of `fields` then the file at `path` (as field `file`),
/// streamed from disk with a `Content-Length`: the client never holds the file.
pub fn upload_file(
    conn: &mut Conn,
    host: &SocketAddr,
    path: &str,
    authorization: Option<&str>,
    fields: &[(&str, &str)],
    file: &Path,
) -> io::Result<Reply> {
    // Not in any field or in a CSV of digits and commas.
    let boundary = "sysgp-bench-boundary-4b1f9e0c7a";
    let mut prefix = Vec::new();
    for (name, value) in fields {
        let _ = write!(prefix, "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
    }
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let _ = write!(
        prefix,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    let suffix = format!("\r\n--{boundary}--\r\n");
    let data = File::open(file)?;
    let length = prefix.len() as u64 + data.metadata()?.len() + suffix.len() as u64;
    let mut head = Vec::new();
    let _ = write!(
        head,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {length}\r\n"
    );
    if let Some(a) = authorization {
        let _ = write!(head, "Authorization: {a}\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut body =
        io::Cursor::new(prefix).chain(io::BufReader::with_capacity(256 * 1024, data)).chain(suffix.as_bytes());
    conn.request_streaming(&head, &mut body)
}

/// Sends `raw` on `conn` and parses the reply body as JSON (`Null` when it is not).
pub fn json_exchange(conn: &mut Conn, raw: &[u8]) -> Result<(u16, Value), String> {
    let reply = conn.request(raw).map_err(|e| format!("HTTP exchange: {e}"))?;
    Ok((reply.status, serde_json::from_slice(&reply.body).unwrap_or(Value::Null)))
}

/// `"code":"…"` of an error body, cheaply.
pub fn error_code(body: &[u8]) -> Option<String> {
    let at = find(body, b"\"code\":\"")? + 8;
    let len = body[at..].iter().position(|b| *b == b'"')?;
    Some(String::from_utf8_lossy(&body[at..at + len]).into_owned())
}

/// Accepts a 201 whose body says `"status":"COMPLETED"`; otherwise an error kind.
pub fn expect_201_completed(status: u16, body: &[u8]) -> Result<(), String> {
    if status != 201 {
        return Err(format!("HTTP {status} {}", error_code(body).unwrap_or_default()));
    }
    if find(body, b"\"status\":\"COMPLETED\"").is_some() {
        return Ok(());
    }
    let at = find(body, b"\"status\":\"").map(|i| i + 10);
    let got = at
        .and_then(|i| body[i..].iter().position(|b| *b == b'"').map(|n| String::from_utf8_lossy(&body[i..i + n])))
        .unwrap_or_default();
    Err(format!("201 with status {got}"))
}

// ---------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------
