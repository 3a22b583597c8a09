//! HTTP/1.x request and response parser, incremental per direction and lenient the way servers
//! and browsers are (bare LF line ends, odd chunk lines, bad Content-Length), so that evasions
//! which a client would still accept do not blind the rules. Bodies are kept up to a limit.

use std::io::Read;

pub const METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "CONNECT",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "SUBSCRIBE",
    "NOTIFY",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
];

const MAX_HEADER_BYTES: usize = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct HttpTx {
    pub request_line: Vec<u8>,
    pub method: Vec<u8>,
    pub uri_raw: Vec<u8>,
    pub uri_norm: Vec<u8>,
    pub protocol: Vec<u8>,
    pub req_headers: Vec<Header>,
    pub req_headers_raw: Vec<u8>,
    pub req_body: Vec<u8>,
    pub response_line: Vec<u8>,
    pub resp_protocol: Vec<u8>,
    pub stat_code: Vec<u8>,
    pub stat_msg: Vec<u8>,
    pub resp_headers: Vec<Header>,
    pub resp_headers_raw: Vec<u8>,
    pub resp_body: Vec<u8>,
    /// Progress: 0 none, 1 headers complete, 2 body complete.
    pub req_progress: u8,
    pub resp_progress: u8,
    // Lazily built normalised buffers.
    pub cache: std::collections::HashMap<(u8, bool), Vec<u8>>,
}

impl HttpTx {
    pub fn header<'a>(hs: &'a [Header], name: &str) -> Option<&'a [u8]> {
        hs.iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.as_slice())
    }
    pub fn host(&self) -> Vec<u8> {
        // Suricata's http.host: lowercased, from the absolute URI if present, else the Host header, without port.
        let mut h = Self::header(&self.req_headers, "host")
            .unwrap_or(b"")
            .to_vec();
        if let Some(rest) = self
            .uri_raw
            .strip_prefix(b"http://")
            .or_else(|| self.uri_raw.strip_prefix(b"https://"))
        {
            let end = rest
                .iter()
                .position(|&c| c == b'/' || c == b'?')
                .unwrap_or(rest.len());
            h = rest[..end].to_vec();
        }
        if let Some(p) = h.iter().rposition(|&c| c == b':') {
            if !h.contains(&b']') || h[p - 1] == b']' {
                h.truncate(p);
            }
        }
        let mut h = h.to_ascii_lowercase();
        while h.last() == Some(&b'.') {
            h.pop();
        }
        h
    }
}

/// `http.header` style normalised block: `Name: value\r\n` per header, Cookie excluded.
pub fn headers_block(hs: &[Header], skip_cookie: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for h in hs {
        if skip_cookie
            && (h.name.eq_ignore_ascii_case(b"cookie")
                || h.name.eq_ignore_ascii_case(b"set-cookie"))
        {
            continue;
        }
        v.extend_from_slice(&h.name);
        v.extend_from_slice(b": ");
        v.extend_from_slice(&h.value);
        v.extend_from_slice(b"\r\n");
    }
    v
}

pub fn header_names(hs: &[Header]) -> Vec<u8> {
    let mut v = b"\r\n".to_vec();
    for h in hs {
        v.extend_from_slice(&h.name);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    v
}

pub fn percent_decode(s: &[u8], plus_space: bool) -> Vec<u8> {
    let mut o = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' && i + 2 < s.len() {
            let h = (s[i + 1] as char).to_digit(16);
            let l = (s[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (h, l) {
                o.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        if c == b'+' && plus_space {
            o.push(b' ');
        } else {
            o.push(c);
        }
        i += 1;
    }
    o
}

/// libhtp-like URI normalisation: strip scheme/authority, percent-decode, `\` to `/`,
/// collapse `//`, resolve `./` and `../` segments. The query string is decoded but not resolved.
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let mut u = raw;
    for pfx in [&b"http://"[..], b"https://"] {
        if u.len() >= pfx.len() && u[..pfx.len()].eq_ignore_ascii_case(pfx) {
            let rest = &u[pfx.len()..];
            let p = rest.iter().position(|&c| c == b'/').unwrap_or(rest.len());
            u = &rest[p..];
        }
    }
    let (path, query) = match u.iter().position(|&c| c == b'?') {
        Some(q) => (&u[..q], Some(&u[q..])),
        None => (u, None),
    };
    let mut p = percent_decode(path, false);
    for c in p.iter_mut() {
        if *c == b'\\' {
            *c = b'/';
        }
    }
    // Resolve dot segments.
    let mut segs: Vec<&[u8]> = Vec::new();
    let abs = p.first() == Some(&b'/');
    let trailing = p.ends_with(b"/") || p.ends_with(b"/.") || p.ends_with(b"/..");
    for s in p.split(|&c| c == b'/') {
        match s {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            _ => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    if abs {
        out.push(b'/');
    }
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    if let Some(q) = query {
        out.extend_from_slice(&percent_decode(q, false));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BodyMode {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// One direction's parser state.
#[derive(Debug)]
struct Dir {
    buf: Vec<u8>,
    in_headers: bool,
    body: BodyMode,
    chunk: ChunkState,
    /// Index of the transaction this direction is filling.
    tx: Option<usize>,
    raw_body: Vec<u8>,
    failed: bool,
}

impl Default for Dir {
    fn default() -> Self {
        Dir {
            buf: Vec::new(),
            in_headers: true,
            body: BodyMode::None,
            chunk: ChunkState::Size,
            tx: None,
            raw_body: Vec::new(),
            failed: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    RequestHeaders,
    RequestDone,
    ResponseHeaders,
    ResponseDone,
}

/// An event for the detection engine: transaction `tx` reached `progress`.
#[derive(Debug, Clone, Copy)]
pub struct TxEvent {
    pub tx: usize,
    pub progress: Progress,
}

pub struct HttpState {
    pub txs: Vec<HttpTx>,
    /// Transactions dropped from the front (their indices keep counting).
    pub base: usize,
    req: Dir,
    resp: Dir,
    next_resp_tx: usize,
    pub body_limit: usize,
    pub decompress_layers: usize,
}

impl HttpState {
    pub fn new(body_limit: usize) -> Self {
        HttpState {
            txs: Vec::new(),
            base: 0,
            req: Dir::default(),
            resp: Dir::default(),
            next_resp_tx: 0,
            body_limit,
            decompress_layers: 2,
        }
    }

    pub fn tx(&self, id: usize) -> Option<&HttpTx> {
        id.checked_sub(self.base).and_then(|i| self.txs.get(i))
    }
    pub fn tx_mut(&mut self, id: usize) -> Option<&mut HttpTx> {
        id.checked_sub(self.base)
            .and_then(move |i| self.txs.get_mut(i))
    }

    /// Drop finished transactions to bound memory on long keep-alive connections.
    fn gc(&mut self) {
        while self.txs.len() > 8 {
            let t = &self.txs[0];
            if t.resp_progress >= 2 || self.txs.len() > 64 {
                self.txs.remove(0);
                self.base += 1;
            } else {
                break;
            }
        }
    }

    pub fn feed(&mut self, to_server: bool, data: &[u8], ev: &mut Vec<TxEvent>) {
        if to_server {
            if self.req.failed {
                return;
            }
            self.req.buf.extend_from_slice(data);
            self.run_request(ev);
        } else {
            if self.resp.failed {
                return;
            }
            self.resp.buf.extend_from_slice(data);
            self.run_response(ev);
        }
    }

    /// End of a direction's stream (FIN, RST or end of capture): finish bodies delimited by close.
    pub fn close(&mut self, to_server: bool, ev: &mut Vec<TxEvent>) {
        // A head cut short by the end of the stream still yields what it has (request line,
        // headers so far): libhtp does the same, and rules on the URI must see it.
        {
            let d = if to_server {
                &mut self.req
            } else {
                &mut self.resp
            };
            if d.in_headers && !d.failed && memchr::memchr(b'\n', &d.buf).is_some() {
                d.buf.extend_from_slice(b"\r\n\r\n");
                if to_server {
                    self.run_request(ev);
                } else {
                    self.run_response(ev);
                }
            }
        }
        let limit = self.body_limit;
        let d = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        if let Some(t) = d.tx {
            if !d.in_headers {
                // Bytes still waiting for a chunk line or more framing: the sender closed, so
                // they are body as far as the receiver is concerned.
                if d.body == BodyMode::Chunked
                    && matches!(d.chunk, ChunkState::Size | ChunkState::Data(_))
                    || d.body == BodyMode::UntilClose
                {
                    let rest = std::mem::take(&mut d.buf);
                    push_limited(&mut d.raw_body, &rest, limit);
                }
                d.in_headers = true;
                d.tx = None;
                d.buf.clear();
                self.finish_body(t, to_server, ev);
            }
        }
    }

    fn run_request(&mut self, ev: &mut Vec<TxEvent>) {
        loop {
            if self.req.in_headers {
                // Skip blank lines between requests.
                let lead = self
                    .req
                    .buf
                    .iter()
                    .position(|c| !c.is_ascii_whitespace() && *c != 0x0b && *c != 0)
                    .unwrap_or(self.req.buf.len());
                self.req.buf.drain(..lead);
                let Some(end) = find_headers_end(&self.req.buf) else {
                    if self.req.buf.len() > MAX_HEADER_BYTES {
                        self.req.failed = true;
                    }
                    return;
                };
                let head: Vec<u8> = self.req.buf.drain(..end).collect();
                let mut tx = HttpTx::default();
                let (line, headers, raw) = split_head(&head);
                let line = &line[..];
                tx.request_line = line.to_vec();
                let mut parts = line
                    .split(|&c| c == b' ' || c == b'\t')
                    .filter(|s| !s.is_empty());
                tx.method = parts.next().unwrap_or(b"").to_vec();
                tx.uri_raw = parts.next().unwrap_or(b"").to_vec();
                tx.protocol = parts.next().unwrap_or(b"").to_vec();
                tx.uri_norm = normalize_uri(&tx.uri_raw);
                tx.req_headers = headers;
                tx.req_headers_raw = raw;
                tx.req_progress = 1;
                let mode = body_mode(&tx.req_headers, false, 0, &tx.method);
                let mode = if mode == BodyMode::UntilClose {
                    BodyMode::None
                } else {
                    mode
                };
                self.txs.push(tx);
                let id = self.base + self.txs.len() - 1;
                ev.push(TxEvent {
                    tx: id,
                    progress: Progress::RequestHeaders,
                });
                self.req.tx = Some(id);
                self.req.body = mode;
                self.req.chunk = ChunkState::Size;
                self.req.raw_body.clear();
                if mode == BodyMode::None {
                    self.finish_body(id, true, ev);
                    self.req.tx = None;
                    self.gc();
                    continue;
                }
                self.req.in_headers = false;
            }
            if !self.body_step(true, ev) {
                return;
            }
        }
    }

    fn run_response(&mut self, ev: &mut Vec<TxEvent>) {
        loop {
            if self.resp.in_headers {
                let lead = self
                    .resp
                    .buf
                    .iter()
                    .position(|c| !c.is_ascii_whitespace() && *c != 0x0b && *c != 0)
                    .unwrap_or(self.resp.buf.len());
                self.resp.buf.drain(..lead);
                if self.resp.buf.is_empty() {
                    return;
                }
                if !starts_with_http(&self.resp.buf) {
                    // Junk lines before a status line are skipped, as clients do.
                    let lim = self.resp.buf.len().min(512);
                    let skip = (0..lim).find(|&k| {
                        self.resp.buf[k] == b'\n' && starts_with_http(&self.resp.buf[k + 1..])
                    });
                    if let Some(k) = skip {
                        self.resp.buf.drain(..=k);
                        continue;
                    }
                }
                if !self.resp.buf[..self.resp.buf.len().min(4)]
                    .eq_ignore_ascii_case(&b"HTTP"[..self.resp.buf.len().min(4)])
                {
                    // Not a status line: treat the rest of the stream as a body (HTTP/0.9 style).
                    let id = self.attach_response(HttpTx::default(), ev, false);
                    self.resp.tx = Some(id);
                    self.resp.body = BodyMode::UntilClose;
                    self.resp.in_headers = false;
                    continue;
                }
                let Some(end) = find_headers_end(&self.resp.buf) else {
                    if self.resp.buf.len() > MAX_HEADER_BYTES {
                        self.resp.failed = true;
                    }
                    return;
                };
                let head: Vec<u8> = self.resp.buf.drain(..end).collect();
                let mut tx = HttpTx::default();
                let (line, headers, raw) = split_head(&head);
                let line = &line[..];
                tx.response_line = line.to_vec();
                let mut parts = line.splitn(3, |&c| c == b' ');
                tx.resp_protocol = parts.next().unwrap_or(b"").to_vec();
                tx.stat_code = parts.next().unwrap_or(b"").trim_ascii().to_vec();
                tx.stat_msg = parts.next().unwrap_or(b"").to_vec();
                tx.resp_headers = headers;
                tx.resp_headers_raw = raw;
                let code: u32 = std::str::from_utf8(&tx.stat_code)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if (100..200).contains(&code) && code != 101 {
                    // Interim response: not a transaction of its own.
                    continue;
                }
                let id = self.attach_response(tx, ev, true);
                let method = self.tx(id).map(|t| t.method.clone()).unwrap_or_default();
                let hdrs = self
                    .tx(id)
                    .map(|t| t.resp_headers.clone())
                    .unwrap_or_default();
                let mode = body_mode(&hdrs, true, code, &method);
                self.resp.tx = Some(id);
                self.resp.body = mode;
                self.resp.chunk = ChunkState::Size;
                self.resp.raw_body.clear();
                if code == 101
                    && self
                        .tx(id)
                        .is_some_and(|t| HttpTx::header(&t.resp_headers, "upgrade").is_some())
                {
                    // Protocol switch: stop parsing this connection as HTTP.
                    self.finish_body(id, false, ev);
                    self.resp.failed = true;
                    self.req.failed = true;
                    return;
                }
                if mode == BodyMode::None {
                    self.finish_body(id, false, ev);
                    self.resp.tx = None;
                    self.gc();
                    continue;
                }
                self.resp.in_headers = false;
            }
            if !self.body_step(false, ev) {
                return;
            }
        }
    }

    fn attach_response(&mut self, resp: HttpTx, ev: &mut Vec<TxEvent>, has_line: bool) -> usize {
        let id = if self.next_resp_tx >= self.base && self.tx(self.next_resp_tx).is_some() {
            self.next_resp_tx
        } else {
            // Response without a request (midstream or lost request): make an empty transaction.
            self.txs.push(HttpTx::default());
            self.base + self.txs.len() - 1
        };
        self.next_resp_tx = id + 1;
        let t = self.tx_mut(id).expect("tx just ensured");
        if has_line {
            t.response_line = resp.response_line;
            t.resp_protocol = resp.resp_protocol;
            t.stat_code = resp.stat_code;
            t.stat_msg = resp.stat_msg;
            t.resp_headers = resp.resp_headers;
            t.resp_headers_raw = resp.resp_headers_raw;
        }
        t.resp_progress = 1;
        ev.push(TxEvent {
            tx: id,
            progress: Progress::ResponseHeaders,
        });
        id
    }

    /// Consume body bytes; returns true when the body finished and parsing should continue.
    fn body_step(&mut self, to_server: bool, ev: &mut Vec<TxEvent>) -> bool {
        let limit = self.body_limit;
        let d = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let Some(id) = d.tx else {
            d.in_headers = true;
            return !d.buf.is_empty();
        };
        let mut done = false;
        match d.body {
            BodyMode::None => done = true,
            BodyMode::Length(n) => {
                let take = (n as usize).min(d.buf.len());
                push_limited(&mut d.raw_body, &d.buf[..take], limit);
                d.buf.drain(..take);
                let left = n - take as u64;
                d.body = BodyMode::Length(left);
                if left == 0 {
                    done = true;
                }
            }
            BodyMode::UntilClose => {
                push_limited(&mut d.raw_body, &d.buf, limit);
                d.buf.clear();
            }
            BodyMode::Chunked => loop {
                match d.chunk {
                    ChunkState::Size => {
                        let Some(nl) = d.buf.iter().position(|&c| c == b'\n') else {
                            if d.buf.len() > 1024 {
                                d.body = BodyMode::UntilClose;
                            }
                            break;
                        };
                        let line: Vec<u8> = d.buf.drain(..=nl).collect();
                        let t = trim_ws(&line);
                        if t.is_empty() {
                            continue; // stray empty lines before a chunk size
                        }
                        let hex: Vec<u8> = t
                            .iter()
                            .copied()
                            .take_while(|c| c.is_ascii_hexdigit())
                            .collect();
                        if hex.is_empty() {
                            // Not a chunk size at all: the server is not really chunking.
                            push_limited(&mut d.raw_body, &line, limit);
                            d.body = BodyMode::UntilClose;
                            break;
                        }
                        let n = u64::from_str_radix(
                            std::str::from_utf8(&hex[..hex.len().min(15)]).unwrap_or("0"),
                            16,
                        )
                        .unwrap_or(0);
                        d.chunk = if n == 0 {
                            ChunkState::Trailer
                        } else {
                            ChunkState::Data(n)
                        };
                    }
                    ChunkState::Data(n) => {
                        if d.buf.is_empty() {
                            break;
                        }
                        let take = (n as usize).min(d.buf.len());
                        push_limited(&mut d.raw_body, &d.buf[..take], limit);
                        d.buf.drain(..take);
                        let left = n - take as u64;
                        d.chunk = if left == 0 {
                            ChunkState::DataEnd
                        } else {
                            ChunkState::Data(left)
                        };
                    }
                    ChunkState::DataEnd => {
                        if d.buf.is_empty() {
                            break;
                        }
                        if d.buf[0] == b'\r' {
                            d.buf.remove(0);
                            continue;
                        }
                        if d.buf[0] == b'\n' {
                            d.buf.remove(0);
                        }
                        d.chunk = ChunkState::Size;
                    }
                    ChunkState::Trailer => {
                        let Some(nl) = d.buf.iter().position(|&c| c == b'\n') else {
                            break;
                        };
                        let line: Vec<u8> = d.buf.drain(..=nl).collect();
                        if line.trim_ascii().is_empty() {
                            done = true;
                            break;
                        }
                    }
                }
            },
        }
        if d.body == BodyMode::UntilClose && !done {
            push_limited(&mut d.raw_body, &d.buf, limit);
            d.buf.clear();
            return false;
        }
        if done {
            d.in_headers = true;
            d.tx = None;
            self.finish_body(id, to_server, ev);
            self.gc();
            let d = if to_server { &self.req } else { &self.resp };
            return !d.buf.is_empty();
        }
        false
    }

    fn finish_body(&mut self, id: usize, to_server: bool, ev: &mut Vec<TxEvent>) {
        let layers = self.decompress_layers;
        let limit = self.body_limit;
        let d = if to_server {
            &mut self.req
        } else {
            &mut self.resp
        };
        let raw = std::mem::take(&mut d.raw_body);
        let Some(t) = self.tx_mut(id) else { return };
        let hs = if to_server {
            &t.req_headers
        } else {
            &t.resp_headers
        };
        let enc: Vec<u8> = hs
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(b"content-encoding"))
            .map(|h| h.value.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(&b","[..]);
        let body = decode_content(&raw, &enc, layers, limit);
        if to_server {
            t.req_body = body;
            t.req_progress = 2;
            ev.push(TxEvent {
                tx: id,
                progress: Progress::RequestDone,
            });
        } else {
            t.resp_body = body;
            t.resp_progress = 2;
            ev.push(TxEvent {
                tx: id,
                progress: Progress::ResponseDone,
            });
        }
    }
}

fn push_limited(dst: &mut Vec<u8>, src: &[u8], limit: usize) {
    let room = limit.saturating_sub(dst.len());
    dst.extend_from_slice(&src[..src.len().min(room)]);
}

fn find_headers_end(b: &[u8]) -> Option<usize> {
    // The head ends at the first blank line. After a CRLF line end the blank line must be CRLF
    // or LF; after a bare LF, a line of only CRs/spaces also ends it (what servers and libhtp
    // accept, and what evasion tests probe).
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &b[i..]) {
        let nl = i + p;
        let rest = &b[nl + 1..];
        if nl > 0 && b[nl - 1] == b'\r' {
            if rest.starts_with(b"\r\n") {
                return Some(nl + 3);
            }
            if rest.starts_with(b"\n") {
                return Some(nl + 2);
            }
            if rest.len() < 2 {
                return None;
            }
        } else {
            match rest
                .iter()
                .position(|&c| !matches!(c, b'\r' | b' ' | b'\t'))
            {
                Some(k) if rest[k] == b'\n' => {
                    // A whitespace-only line right before a truly empty line is skipped, the
                    // empty line ends the head (libhtp's "only space is terminator if a
                    // terminator does not follow right away").
                    let after = nl + 1 + k + 1;
                    if k > 0 {
                        if b[after..].starts_with(b"\n") {
                            return Some(after + 1);
                        }
                        if b[after..].starts_with(b"\r\n") {
                            return Some(after + 2);
                        }
                    }
                    return Some(after);
                }
                Some(_) => {}
                None => return None,
            }
        }
        i = nl + 1;
    }
    None
}

fn starts_with_http(b: &[u8]) -> bool {
    let n = b.len().min(5);
    n > 0 && b[..n].eq_ignore_ascii_case(&b"HTTP/"[..n])
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Split a message head into its first line and headers (folded continuation lines joined).
fn split_head(head: &[u8]) -> (Vec<u8>, Vec<Header>, Vec<u8>) {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'\n' => {
                lines.push(&head[start..i]);
                start = i + 1;
            }
            b'\r' if head.get(i + 1) != Some(&b'\n') => {
                lines.push(&head[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < head.len() {
        lines.push(&head[start..]);
    }
    let mut it = lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = it.next().unwrap_or(b"").to_vec();
    let first_len = first.len();
    let mut hs: Vec<Header> = Vec::new();
    for l in it {
        let starts_ws = head_starts_ws(l);
        let l: Vec<u8> = l.iter().copied().filter(|&c| c != 0).collect();
        if l.trim_ascii().is_empty() {
            continue;
        }
        let colon = l.iter().position(|&c| c == b':');
        let looks_header = colon.is_some_and(|p| {
            let n = l[..p].trim_ascii();
            !n.is_empty() && n.iter().all(|&c| is_token_char(c))
        });
        if starts_ws && !hs.is_empty() && !looks_header {
            let last = hs.last_mut().unwrap();
            if !last.value.is_empty() {
                last.value.push(b' ');
            }
            last.value.extend_from_slice(l.trim_ascii());
            continue;
        }
        match colon {
            Some(p) => hs.push(Header {
                name: trim_ws(&l[..p]).to_vec(),
                value: trim_ws(&l[p + 1..]).to_vec(),
            }),
            None => hs.push(Header {
                name: l.trim_ascii().to_vec(),
                value: Vec::new(),
            }),
        }
    }
    let raw_start = (first_len + 1).min(head.len());
    let raw_start =
        if head.get(first_len) == Some(&b'\r') && head.get(first_len + 1) == Some(&b'\n') {
            raw_start + 1
        } else {
            raw_start
        }
        .min(head.len());
    let mut raw = head[raw_start..].to_vec();
    while raw
        .last()
        .is_some_and(|&c| matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
    {
        raw.pop();
    }
    if !raw.is_empty() {
        raw.extend_from_slice(b"\r\n");
    }
    (first, hs, raw)
}

fn head_starts_ws(l: &[u8]) -> bool {
    l.first()
        // libhtp also folds lines that start with NUL.
        .is_some_and(|&c| c == b' ' || c == b'\t' || c == 0x0b || c == 0)
}

fn trim_ws(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|c| !c.is_ascii_whitespace() && *c != 0x0b)
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|c| !c.is_ascii_whitespace() && *c != 0x0b)
        .map(|x| x + 1)
        .unwrap_or(s);
    &v[s..e.max(s)]
}

fn body_mode(hs: &[Header], response: bool, code: u32, method: &[u8]) -> BodyMode {
    if response && (method.eq_ignore_ascii_case(b"HEAD") || code == 304) {
        return BodyMode::None;
    }
    let te_chunked = hs.iter().any(|h| {
        h.name.eq_ignore_ascii_case(b"transfer-encoding")
            && h.value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked")
    });
    if te_chunked {
        return BodyMode::Chunked;
    }
    let cls: Vec<&Header> = hs
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(b"content-length"))
        .collect();
    if let Some(h) = cls.first() {
        let v = h.value.trim_ascii();
        if !v.is_empty() && v.iter().all(|c| c.is_ascii_digit()) {
            if let Some(n) = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                return if n == 0 {
                    BodyMode::None
                } else {
                    BodyMode::Length(n)
                };
            }
        }
        return if response {
            BodyMode::UntilClose
        } else {
            BodyMode::None
        };
    }
    if response {
        BodyMode::UntilClose
    } else {
        BodyMode::None
    }
}

/// Undo Content-Encoding layers (gzip, deflate) as far as they decode; on failure keep what decoded,
/// or the raw bytes when nothing did.
fn decode_content(raw: &[u8], enc: &[u8], layers: usize, limit: usize) -> Vec<u8> {
    let mut body = raw.to_vec();
    let encs: Vec<&[u8]> = enc
        .split(|&c| c == b',')
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
        .collect();
    let mut n = 0;
    for e in encs.iter().rev() {
        if n >= layers.max(1) {
            break;
        }
        let is_gzip = e.windows(4).any(|w| w == b"gzip");
        let is_deflate = e.windows(7).any(|w| w == b"deflate");
        if !is_gzip && !is_deflate {
            continue;
        }
        let out = inflate_any(&body, limit);
        if out.is_empty() {
            break;
        }
        body = out;
        n += 1;
    }
    if encs.is_empty() && body.starts_with(&[0x1f, 0x8b]) {
        // libhtp does not sniff; leave undeclared compression alone.
    }
    body
}

/// Inflate gzip, zlib or raw deflate data, whichever the bytes look like, tolerating a truncated
/// stream and unusual gzip header flags.
pub fn inflate_any(data: &[u8], limit: usize) -> Vec<u8> {
    if data.len() >= 10 && data[0] == 0x1f && data[1] == 0x8b {
        let flags = data[3];
        let mut p = 10;
        if flags & 0x04 != 0 {
            if data.len() < p + 2 {
                return Vec::new();
            }
            let xlen = u16::from_le_bytes([data[p], data[p + 1]]) as usize;
            p += 2 + xlen;
        }
        if flags & 0x08 != 0 {
            while p < data.len() && data[p] != 0 {
                p += 1;
            }
            p += 1;
        }
        if flags & 0x10 != 0 {
            while p < data.len() && data[p] != 0 {
                p += 1;
            }
            p += 1;
        }
        if flags & 0x02 != 0 {
            p += 2;
        }
        if p > data.len() {
            return Vec::new();
        }
        return raw_inflate(&data[p..], limit);
    }
    let z = zlib_inflate(data, limit);
    if !z.is_empty() {
        return z;
    }
    raw_inflate(data, limit)
}

fn raw_inflate(data: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut d = flate2::read::DeflateDecoder::new(data).take(limit as u64);
    let mut buf = [0u8; 8192];
    loop {
        match d.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

fn zlib_inflate(data: &[u8], limit: usize) -> Vec<u8> {
    if data.len() < 2 || (data[0] as u16 * 256 + data[1] as u16) % 31 != 0 || data[0] & 0x0f != 8 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut d = flate2::read::ZlibDecoder::new(data).take(limit as u64);
    let mut buf = [0u8; 8192];
    loop {
        match d.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

pub fn looks_like_request(d: &[u8]) -> bool {
    let end = d.iter().position(|&c| c == b' ').unwrap_or(d.len().min(16));
    let m = &d[..end];
    METHODS.iter().any(|x| x.as_bytes() == m) && end < d.len()
}

pub fn looks_like_response(d: &[u8]) -> bool {
    d.starts_with(b"HTTP/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunked_response_with_junk_after_size_is_dechunked() {
        let mut s = HttpState::new(100_000);
        let mut ev = Vec::new();
        s.feed(true, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", &mut ev);
        s.feed(false, b"HTTP/1.1 200 ok\r\nTransfer-Encoding: chunked\r\n\r\n3,\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", &mut ev);
        assert_eq!(s.tx(0).unwrap().resp_body, b"abcde");
        assert!(ev.iter().any(|e| e.progress == Progress::ResponseDone));
    }

    #[test]
    fn uri_normalisation_resolves_dots_and_percent() {
        assert_eq!(
            normalize_uri(b"/a/./b/../c%2fd?x=%41"),
            b"/a/c/d?x=A".to_vec()
        );
        assert_eq!(normalize_uri(b"http://h/x//y"), b"/x/y".to_vec());
    }

    #[test]
    fn invalid_content_length_reads_body_to_close() {
        let mut s = HttpState::new(100_000);
        let mut ev = Vec::new();
        s.feed(
            false,
            b"HTTP/1.1 200 ok\r\nContent-length: 3( 9)\r\n\r\nabcdefghi",
            &mut ev,
        );
        s.close(false, &mut ev);
        assert_eq!(s.tx(0).unwrap().resp_body, b"abcdefghi");
    }

    proptest! {
        #[test]
        fn parser_never_panics(a in proptest::collection::vec(any::<u8>(), 0..300), b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut s = HttpState::new(1000);
            let mut ev = Vec::new();
            let mut req = b"GET / HTTP/1.1\r\n".to_vec();
            req.extend_from_slice(&a);
            s.feed(true, &req, &mut ev);
            let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
            resp.extend_from_slice(&b);
            s.feed(false, &resp, &mut ev);
            s.close(false, &mut ev);
            let _ = inflate_any(&b, 1000);
        }
    }
}

#[cfg(test)]
mod evasion_tests {
    use super::*;

    fn body_of(resp: &[u8]) -> Vec<u8> {
        let mut s = HttpState::new(100_000);
        let mut ev = Vec::new();
        s.feed(true, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", &mut ev);
        s.feed(false, resp, &mut ev);
        s.close(false, &mut ev);
        s.tx(0).map(|t| t.resp_body.clone()).unwrap_or_default()
    }

    #[test]
    fn whitespace_before_status_line_is_skipped() {
        assert_eq!(
            body_of(
                b" \r\nHTTP/1.1 200 ok\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nX5O!\r\n0\r\n\r\n"
            ),
            b"X5O!"
        );
    }

    #[test]
    fn unchunkable_body_is_kept_raw() {
        assert_eq!(body_of(b"HTTP/1.0 200 ok\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nX5O!P%@AP"), b"X5O!P%@AP");
    }
}
