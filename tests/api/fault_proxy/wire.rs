//! The little HTTP/1.1 the proxy speaks: request and response heads, bodies, chunks.

use std::io;

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Time-out",
        _ => "Unknown",
    }
}

pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// Bytes on the wire: head and body.
    pub(super) wire_len: usize,
}

pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

pub(super) fn parse_head(head: &[u8]) -> io::Result<(String, Vec<(String, String)>)> {
    let head = std::str::from_utf8(head).map_err(io::Error::other)?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok((first, headers))
}

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

pub(super) fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "content-length").map(|v| v.parse().map_err(io::Error::other)).transpose()
}

impl Request {
    /// `None` while incomplete.
    pub(super) fn parse(buf: &[u8]) -> io::Result<Option<Request>> {
        let Some(end) = head_end(buf) else { return Ok(None) };
        let (first, headers) = parse_head(&buf[..end])?;
        let mut words = first.split(' ');
        let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        if header(&headers, "transfer-encoding").is_some() {
            return Err(io::Error::other("chunked requests are not expected from sysgp"));
        }
        let wire_len = end + 4 + content_length(&headers)?.unwrap_or(0);
        if buf.len() < wire_len {
            return Ok(None);
        }
        let body = buf[end + 4..wire_len].to_vec();
        Ok(Some(Request { method: method.to_owned(), path: path.to_owned(), headers, body, wire_len }))
    }

    /// The request for the simulator, on a connection of its own.
    pub(super) fn upstream_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (name, value) in self.headers.iter().filter(|(n, _)| n != "connection" && n != "keep-alive") {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) body: Vec<u8>,
}

impl Response {
    pub(super) fn parse(raw: &[u8]) -> io::Result<Response> {
        let end = head_end(raw).ok_or_else(|| io::Error::other("upstream reply without a head"))?;
        let (first, headers) = parse_head(&raw[..end])?;
        let status =
            first.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| io::Error::other(first.clone()))?;
        let mut body = raw[end + 4..].to_vec();
        if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            body = dechunk(&body)?;
        } else if let Some(len) = content_length(&headers)? {
            body.truncate(len);
        }
        let content_type = header(&headers, "content-type").unwrap_or("application/json").to_owned();
        Ok(Response { status, content_type, body })
    }
}

pub(super) fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(|| io::Error::other("bad chunk"))?;
        let size_text = std::str::from_utf8(&raw[..line_end]).map_err(io::Error::other)?;
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(io::Error::other)?;
        if size == 0 {
            return Ok(out);
        }
        let start = line_end + 2;
        let chunk = raw.get(start..start + size).ok_or_else(|| io::Error::other("short chunk"))?;
        out.extend_from_slice(chunk);
        raw = raw.get(start + size + 2..).ok_or_else(|| io::Error::other("short chunk"))?;
    }
}
