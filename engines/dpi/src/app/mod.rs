//! Application-layer protocol detection and parsers, and the inspection buffers they expose.

pub mod dns;
pub mod http;
pub mod tls;

use crate::rules::{AppProto, Buf};
use std::borrow::Cow;

/// Parser state of one flow's application protocol.
pub enum AppState {
    None,
    Http(Box<http::HttpState>),
    Dns {
        tcp: dns::TcpDns,
        last: Option<dns::DnsMsg>,
        count: u64,
    },
    Tls(Box<tls::TlsState>),
    Ssh {
        banner: [Option<Vec<u8>>; 2],
        buf: [Vec<u8>; 2],
    },
    /// Detected (for header protocol matching) but not parsed.
    Opaque,
}

/// Guess the protocol from the first bytes of a direction (content first, port as a hint).
pub fn detect(data: &[u8], to_server: bool, udp: bool, sport: u16, dport: u16) -> Option<AppProto> {
    let port = |p: u16| sport == p || dport == p;
    if udp {
        if (port(53) || port(5353)) && dns::parse(data).is_some() || dns::looks_like_dns(data) {
            return Some(AppProto::Dns);
        }
        return None;
    }
    if http::looks_like_request(data) || http::looks_like_response(data) {
        return Some(AppProto::Http);
    }
    if tls::looks_like_tls(data) {
        return Some(AppProto::Tls);
    }
    if data.starts_with(b"SSH-") {
        return Some(AppProto::Ssh);
    }
    if (port(53) || port(5353)) && data.len() >= 14 && dns::parse(&data[2..]).is_some() {
        return Some(AppProto::Dns);
    }
    let up = data.to_ascii_uppercase();
    if !to_server && data.starts_with(b"220") && (port(25) || port(587) || port(465))
        || to_server && (up.starts_with(b"EHLO ") || up.starts_with(b"HELO "))
    {
        return Some(AppProto::Smtp);
    }
    if !to_server && data.starts_with(b"220") && port(21)
        || to_server && (up.starts_with(b"USER ") || up.starts_with(b"FEAT")) && port(21)
    {
        return Some(AppProto::Ftp);
    }
    if !to_server && data.starts_with(b"220") {
        return Some(if port(21) {
            AppProto::Ftp
        } else {
            AppProto::Smtp
        });
    }
    if data.len() >= 8 && (&data[4..8] == b"\xffSMB" || &data[4..8] == b"\xfeSMB") {
        return Some(AppProto::Smb);
    }
    if !to_server && data.starts_with(b"* OK") {
        return Some(AppProto::Imap);
    }
    if !to_server && data.starts_with(b"+OK") {
        return Some(AppProto::Pop3);
    }
    None
}

pub fn new_state(p: AppProto, body_limit: usize, layers: usize) -> AppState {
    match p {
        AppProto::Http => {
            let mut h = http::HttpState::new(body_limit);
            h.decompress_layers = layers;
            AppState::Http(Box::new(h))
        }
        AppProto::Dns => AppState::Dns {
            tcp: dns::TcpDns::default(),
            last: None,
            count: 0,
        },
        AppProto::Tls => AppState::Tls(Box::default()),
        AppProto::Ssh => AppState::Ssh {
            banner: [None, None],
            buf: [Vec::new(), Vec::new()],
        },
        _ => AppState::Opaque,
    }
}

/// Split `SSH-2.0-OpenSSH_8.9 comment` into proto `2.0` and software `OpenSSH_8.9`.
pub fn ssh_parts(b: &[u8]) -> (&[u8], &[u8]) {
    let rest = b.strip_prefix(b"SSH-").unwrap_or(b);
    let dash = rest.iter().position(|&c| c == b'-').unwrap_or(rest.len());
    let proto = &rest[..dash];
    let sw = rest.get(dash + 1..).unwrap_or(b"");
    let sw_end = sw.iter().position(|&c| c == b' ').unwrap_or(sw.len());
    (proto, &sw[..sw_end])
}

/// Which transaction a detection pass looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxRef {
    Http(usize),
    Dns,
    Tls,
    Ssh,
}

impl TxRef {
    /// Key for "alert once per transaction".
    pub fn key(self, dns_count: u64) -> u64 {
        match self {
            TxRef::Http(i) => i as u64,
            TxRef::Dns => (1 << 40) + dns_count,
            TxRef::Tls => 1 << 50,
            TxRef::Ssh => 1 << 51,
        }
    }
}

/// The instances of `buf` in a transaction (several for multi-buffers such as `tls.certs`),
/// `to_server` selecting the side for buffers present on both.
pub fn tx_buffers<'a>(
    st: &'a AppState,
    tx: TxRef,
    buf: Buf,
    to_server: bool,
    out: &mut Vec<Cow<'a, [u8]>>,
) {
    use http::{header_names, headers_block, HttpTx};
    match (st, tx) {
        (AppState::Http(h), TxRef::Http(id)) => {
            let Some(t) = h.tx(id) else { return };
            let req = t.req_progress > 0;
            let resp = t.resp_progress > 0;
            let hdr = |name: &str, request: bool| -> Option<Cow<'a, [u8]>> {
                let hs = if request {
                    &t.req_headers
                } else {
                    &t.resp_headers
                };
                HttpTx::header(hs, name).map(Cow::Borrowed)
            };
            let v: Option<Cow<'a, [u8]>> = match buf {
                Buf::HttpUri if req => Some(Cow::Borrowed(&t.uri_norm)),
                Buf::HttpUriRaw if req => Some(Cow::Borrowed(&t.uri_raw)),
                Buf::HttpMethod if req => Some(Cow::Borrowed(&t.method)),
                Buf::HttpProtocol => Some(Cow::Borrowed(if to_server {
                    &t.protocol
                } else {
                    &t.resp_protocol
                })),
                Buf::HttpHost if req => Some(Cow::Owned(t.host())),
                Buf::HttpHostRaw if req => hdr("host", true),
                Buf::HttpUserAgent if req => hdr("user-agent", true),
                Buf::HttpCookie => hdr(if to_server { "cookie" } else { "set-cookie" }, to_server),
                Buf::HttpReferer if req => hdr("referer", true),
                Buf::HttpAccept if req => hdr("accept", true),
                Buf::HttpAcceptEnc if req => hdr("accept-encoding", true),
                Buf::HttpAcceptLang if req => hdr("accept-language", true),
                Buf::HttpConnection => hdr("connection", to_server),
                Buf::HttpContentType => hdr("content-type", to_server),
                Buf::HttpContentLen => hdr("content-length", to_server),
                Buf::HttpLocation if resp => hdr("location", false),
                Buf::HttpServer if resp => hdr("server", false),
                Buf::HttpRequestLine if req => Some(Cow::Borrowed(&t.request_line)),
                Buf::HttpResponseLine if resp => Some(Cow::Borrowed(&t.response_line)),
                Buf::HttpStatCode if resp => Some(Cow::Borrowed(&t.stat_code)),
                Buf::HttpStatMsg if resp => Some(Cow::Borrowed(&t.stat_msg)),
                Buf::HttpHeader => {
                    let hs = if to_server {
                        &t.req_headers
                    } else {
                        &t.resp_headers
                    };
                    if hs.is_empty() && (if to_server { !req } else { !resp }) {
                        None
                    } else {
                        Some(Cow::Owned(headers_block(hs, true)))
                    }
                }
                Buf::HttpHeaderRaw => Some(Cow::Borrowed(if to_server {
                    &t.req_headers_raw
                } else {
                    &t.resp_headers_raw
                })),
                Buf::HttpHeaderNames => Some(Cow::Owned(header_names(if to_server {
                    &t.req_headers
                } else {
                    &t.resp_headers
                }))),
                Buf::HttpStart => {
                    let (line, hs) = if to_server {
                        (&t.request_line, &t.req_headers)
                    } else {
                        (&t.response_line, &t.resp_headers)
                    };
                    let mut v = line.clone();
                    v.extend_from_slice(b"\r\n");
                    v.extend_from_slice(&headers_block(hs, false));
                    v.extend_from_slice(b"\r\n");
                    Some(Cow::Owned(v))
                }
                Buf::HttpRequestHeader | Buf::HttpResponseHeader => {
                    let hs = if buf == Buf::HttpRequestHeader {
                        &t.req_headers
                    } else {
                        &t.resp_headers
                    };
                    for hd in hs {
                        let mut v = hd.name.clone();
                        v.extend_from_slice(b": ");
                        v.extend_from_slice(&hd.value);
                        out.push(Cow::Owned(v));
                    }
                    None
                }
                Buf::HttpRequestBody if t.req_progress >= 2 => Some(Cow::Borrowed(&t.req_body)),
                Buf::HttpResponseBody if t.resp_progress >= 2 => Some(Cow::Borrowed(&t.resp_body)),
                Buf::FileData | Buf::Base64Data => {
                    if to_server {
                        (t.req_progress >= 2 && !t.req_body.is_empty())
                            .then(|| Cow::Borrowed(&t.req_body[..]))
                    } else {
                        (t.resp_progress >= 2 && !t.resp_body.is_empty())
                            .then(|| Cow::Borrowed(&t.resp_body[..]))
                    }
                }
                _ => None,
            };
            if let Some(v) = v {
                out.push(v);
            }
        }
        (AppState::Dns { last: Some(m), .. }, TxRef::Dns) => {
            if buf == Buf::DnsQuery {
                for (n, _) in &m.queries {
                    out.push(Cow::Borrowed(n));
                }
            }
        }
        (AppState::Tls(t), TxRef::Tls) => {
            let v = match buf {
                Buf::TlsSni => t.sni.as_deref(),
                Buf::TlsCertSubject => t.cert_subject.as_deref(),
                Buf::TlsCertIssuer => t.cert_issuer.as_deref(),
                Buf::TlsCertSerial => t.cert_serial.as_deref(),
                Buf::Ja3Hash => t.ja3_hash.as_deref(),
                Buf::Ja3String => t.ja3.as_deref(),
                Buf::Ja3sHash => t.ja3s_hash.as_deref(),
                Buf::Ja4Hash => t.ja4.as_deref(),
                Buf::TlsCerts => {
                    for c in &t.certs {
                        out.push(Cow::Borrowed(c));
                    }
                    None
                }
                _ => None,
            };
            if let Some(v) = v {
                out.push(Cow::Borrowed(v));
            }
        }
        (AppState::Ssh { banner, .. }, TxRef::Ssh) => {
            let b = if to_server { &banner[0] } else { &banner[1] };
            if let Some(b) = b {
                let (p, s) = ssh_parts(b);
                match buf {
                    Buf::SshProto => out.push(Cow::Borrowed(p)),
                    Buf::SshSoftware => out.push(Cow::Borrowed(s)),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}
