//! Parser of the Suricata rule language into [`Rule`]s.
//!
//! A rule that cannot be honoured exactly (unknown or unsupported keyword, bad value) is rejected
//! with a reason naming the keyword; it is never loaded with part of its logic silently dropped.

use crate::addr::{parse_addr, parse_ports, AddrSet, PortSet, Vars};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProto {
    Http,
    Http2,
    Dns,
    Tls,
    Ssh,
    Smtp,
    Ftp,
    FtpData,
    Smb,
    Imap,
    Pop3,
    Dcerpc,
    Krb5,
    Snmp,
    Sip,
    Nfs,
    Rdp,
    Dhcp,
    Ntp,
    Tftp,
    Ikev2,
    Mqtt,
    Modbus,
    Dnp3,
    Enip,
    Rfb,
    Telnet,
    Failed,
}

impl AppProto {
    pub fn from_name(s: &str) -> Option<AppProto> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" | "http1" => AppProto::Http,
            "http2" => AppProto::Http2,
            "dns" => AppProto::Dns,
            "tls" | "ssl" => AppProto::Tls,
            "ssh" => AppProto::Ssh,
            "smtp" => AppProto::Smtp,
            "ftp" => AppProto::Ftp,
            "ftp-data" => AppProto::FtpData,
            "smb" => AppProto::Smb,
            "imap" => AppProto::Imap,
            "pop3" => AppProto::Pop3,
            "dcerpc" => AppProto::Dcerpc,
            "krb5" => AppProto::Krb5,
            "snmp" => AppProto::Snmp,
            "sip" => AppProto::Sip,
            "nfs" => AppProto::Nfs,
            "rdp" => AppProto::Rdp,
            "dhcp" => AppProto::Dhcp,
            "ntp" => AppProto::Ntp,
            "tftp" => AppProto::Tftp,
            "ikev2" | "ike" => AppProto::Ikev2,
            "mqtt" => AppProto::Mqtt,
            "modbus" => AppProto::Modbus,
            "dnp3" => AppProto::Dnp3,
            "enip" => AppProto::Enip,
            "rfb" => AppProto::Rfb,
            "telnet" => AppProto::Telnet,
            "failed" => AppProto::Failed,
            _ => return None,
        })
    }
    /// The name printed in EVE's `app_proto`.
    pub fn name(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Http2 => "http2",
            AppProto::Dns => "dns",
            AppProto::Tls => "tls",
            AppProto::Ssh => "ssh",
            AppProto::Smtp => "smtp",
            AppProto::Ftp => "ftp",
            AppProto::FtpData => "ftp-data",
            AppProto::Smb => "smb",
            AppProto::Imap => "imap",
            AppProto::Pop3 => "pop3",
            AppProto::Dcerpc => "dcerpc",
            AppProto::Krb5 => "krb5",
            AppProto::Snmp => "snmp",
            AppProto::Sip => "sip",
            AppProto::Nfs => "nfs",
            AppProto::Rdp => "rdp",
            AppProto::Dhcp => "dhcp",
            AppProto::Ntp => "ntp",
            AppProto::Tftp => "tftp",
            AppProto::Ikev2 => "ike",
            AppProto::Mqtt => "mqtt",
            AppProto::Modbus => "modbus",
            AppProto::Dnp3 => "dnp3",
            AppProto::Enip => "enip",
            AppProto::Rfb => "rfb",
            AppProto::Telnet => "telnet",
            AppProto::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Tcp,
    TcpPkt,
    TcpStream,
    Udp,
    Icmp,
    App(AppProto),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Alert,
    Drop,
    Reject,
    Pass,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Alert => "allowed",
            Action::Drop | Action::Reject => "blocked",
            Action::Pass => "allowed",
        }
    }
}

/// The inspection buffers a content match can be bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buf {
    Pkt,
    FileData,
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpHost,
    HttpHostRaw,
    HttpUserAgent,
    HttpHeader,
    HttpHeaderRaw,
    HttpHeaderNames,
    HttpCookie,
    HttpRequestBody,
    HttpResponseBody,
    HttpStatCode,
    HttpStatMsg,
    HttpContentType,
    HttpContentLen,
    HttpReferer,
    HttpRequestLine,
    HttpResponseLine,
    HttpStart,
    HttpLocation,
    HttpServer,
    HttpAccept,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpConnection,
    HttpProtocol,
    HttpRequestHeader,
    HttpResponseHeader,
    DnsQuery,
    TlsSni,
    TlsCertSubject,
    TlsCertIssuer,
    TlsCertSerial,
    TlsCerts,
    TlsVersion,
    Ja3Hash,
    Ja3String,
    Ja3sHash,
    Ja4Hash,
    SshProto,
    SshSoftware,
    Base64Data,
    TcpHdr,
    UdpHdr,
    Ipv4Hdr,
    Ipv6Hdr,
}

/// Which side of a transaction a buffer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
    Either,
    Packet,
}

impl Buf {
    pub fn from_sticky(name: &str) -> Option<Buf> {
        Some(match name {
            "pkt_data" => Buf::Pkt,
            "file.data" | "file_data" => Buf::FileData,
            "http.uri" => Buf::HttpUri,
            "http.uri.raw" => Buf::HttpUriRaw,
            "http.method" => Buf::HttpMethod,
            "http.host" => Buf::HttpHost,
            "http.host.raw" => Buf::HttpHostRaw,
            "http.user_agent" => Buf::HttpUserAgent,
            "http.header" => Buf::HttpHeader,
            "http.header.raw" => Buf::HttpHeaderRaw,
            "http.header_names" => Buf::HttpHeaderNames,
            "http.cookie" => Buf::HttpCookie,
            "http.request_body" | "http.client_body" => Buf::HttpRequestBody,
            "http.response_body" | "http.server_body" => Buf::HttpResponseBody,
            "http.stat_code" => Buf::HttpStatCode,
            "http.stat_msg" => Buf::HttpStatMsg,
            "http.content_type" => Buf::HttpContentType,
            "http.content_len" => Buf::HttpContentLen,
            "http.referer" => Buf::HttpReferer,
            "http.request_line" | "http_request_line" => Buf::HttpRequestLine,
            "http.response_line" | "http_response_line" => Buf::HttpResponseLine,
            "http.start" => Buf::HttpStart,
            "http.location" => Buf::HttpLocation,
            "http.server" => Buf::HttpServer,
            "http.accept" => Buf::HttpAccept,
            "http.accept_enc" => Buf::HttpAcceptEnc,
            "http.accept_lang" => Buf::HttpAcceptLang,
            "http.connection" => Buf::HttpConnection,
            "http.protocol" => Buf::HttpProtocol,
            "http.request_header" => Buf::HttpRequestHeader,
            "http.response_header" => Buf::HttpResponseHeader,
            "dns.query" | "dns_query" | "dns.queries.rrname" => Buf::DnsQuery,
            "tls.sni" | "tls_sni" => Buf::TlsSni,
            "tls.cert_subject" | "tls_cert_subject" => Buf::TlsCertSubject,
            "tls.cert_issuer" | "tls_cert_issuer" => Buf::TlsCertIssuer,
            "tls.cert_serial" | "tls_cert_serial" => Buf::TlsCertSerial,
            "tls.certs" => Buf::TlsCerts,
            "ja3.hash" | "ja3_hash" => Buf::Ja3Hash,
            "ja3.string" | "ja3_string" => Buf::Ja3String,
            "ja3s.hash" | "ja3s_hash" => Buf::Ja3sHash,
            "ja4.hash" => Buf::Ja4Hash,
            "ssh.proto" | "ssh_proto" => Buf::SshProto,
            "ssh.software" | "ssh_software" => Buf::SshSoftware,
            "base64_data" => Buf::Base64Data,
            "tcp.hdr" => Buf::TcpHdr,
            "udp.hdr" => Buf::UdpHdr,
            "ipv4.hdr" => Buf::Ipv4Hdr,
            "ipv6.hdr" => Buf::Ipv6Hdr,
            _ => return None,
        })
    }

    /// Legacy content modifiers (`content:"x"; http_uri;`).
    pub fn from_modifier(name: &str) -> Option<Buf> {
        Some(match name {
            "http_uri" => Buf::HttpUri,
            "http_raw_uri" => Buf::HttpUriRaw,
            "http_method" => Buf::HttpMethod,
            "http_host" => Buf::HttpHost,
            "http_raw_host" => Buf::HttpHostRaw,
            "http_user_agent" => Buf::HttpUserAgent,
            "http_header" => Buf::HttpHeader,
            "http_raw_header" => Buf::HttpHeaderRaw,
            "http_cookie" => Buf::HttpCookie,
            "http_client_body" => Buf::HttpRequestBody,
            "http_server_body" => Buf::HttpResponseBody,
            "http_stat_code" => Buf::HttpStatCode,
            "http_stat_msg" => Buf::HttpStatMsg,
            _ => return None,
        })
    }

    pub fn side(self) -> Side {
        use Buf::*;
        match self {
            Pkt | TcpHdr | UdpHdr | Ipv4Hdr | Ipv6Hdr => Side::Packet,
            HttpUri | HttpUriRaw | HttpMethod | HttpHost | HttpHostRaw | HttpUserAgent
            | HttpCookie | HttpRequestBody | HttpReferer | HttpRequestLine | HttpAccept
            | HttpAcceptEnc | HttpAcceptLang | HttpRequestHeader | DnsQuery | TlsSni | Ja3Hash
            | Ja3String | Ja4Hash => Side::Request,
            HttpResponseBody | HttpStatCode | HttpStatMsg | HttpResponseLine | HttpLocation
            | HttpServer | HttpResponseHeader | TlsCertSubject | TlsCertIssuer | TlsCertSerial
            | TlsCerts | Ja3sHash => Side::Response,
            _ => Side::Either,
        }
    }

    /// The application protocol a buffer implies for a rule whose header says `tcp`/`udp`/`ip`.
    pub fn app(self) -> Option<AppProto> {
        use Buf::*;
        match self {
            Pkt | FileData | Base64Data | TcpHdr | UdpHdr | Ipv4Hdr | Ipv6Hdr => None,
            DnsQuery => Some(AppProto::Dns),
            TlsSni | TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCerts | TlsVersion
            | Ja3Hash | Ja3String | Ja3sHash | Ja4Hash => Some(AppProto::Tls),
            SshProto | SshSoftware => Some(AppProto::Ssh),
            _ => Some(AppProto::Http),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    N(i64),
    Var(u8),
}

#[derive(Debug, Clone)]
pub struct Content {
    pub pat: Vec<u8>,
    pub nocase: bool,
    pub negated: bool,
    pub offset: Option<Val>,
    pub depth: Option<Val>,
    pub distance: Option<Val>,
    pub within: Option<Val>,
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: bool,
    pub fast_only: bool,
}

impl Content {
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
    And,
    Or,
    Range(i64, i64),
    RangeIncl(i64, i64),
    Ne,
}

#[derive(Debug, Clone, Copy)]
pub struct Cmp {
    pub op: CmpOp,
    pub val: i64,
}

impl Cmp {
    pub fn test(&self, x: i64) -> bool {
        match self.op {
            CmpOp::Eq => x == self.val,
            CmpOp::Ne => x != self.val,
            CmpOp::Lt => x < self.val,
            CmpOp::Gt => x > self.val,
            CmpOp::Le => x <= self.val,
            CmpOp::Ge => x >= self.val,
            CmpOp::And => x & self.val != 0,
            CmpOp::Or => x | self.val != 0,
            CmpOp::Range(a, b) => x > a && x < b,
            CmpOp::RangeIncl(a, b) => x >= a && x <= b,
        }
    }
    /// `5`, `<5`, `>=5`, `!5`, `5<>10`, `5-10` (Suricata's numeric comparisons).
    pub fn parse(s: &str) -> Result<Cmp, String> {
        let s = s.trim();
        let bad = || format!("bad numeric comparison {s:?}");
        let num = |t: &str| parse_int(t.trim()).ok_or_else(bad);
        if let Some((a, b)) = s.split_once("<>") {
            return Ok(Cmp {
                op: CmpOp::Range(num(a)?, num(b)?),
                val: 0,
            });
        }
        for (p, op) in [
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("!=", CmpOp::Ne),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
            ("!", CmpOp::Ne),
            ("=", CmpOp::Eq),
        ] {
            if let Some(r) = s.strip_prefix(p) {
                return Ok(Cmp { op, val: num(r)? });
            }
        }
        if let Some((a, b)) = s.split_once('-') {
            if !a.is_empty() {
                return Ok(Cmp {
                    op: CmpOp::RangeIncl(num(a)?, num(b)?),
                    val: 0,
                });
            }
        }
        Ok(Cmp {
            op: CmpOp::Eq,
            val: num(s)?,
        })
    }
}

pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else {
        s.parse::<i64>().ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumBase {
    Dec,
    Hex,
    Oct,
}

#[derive(Debug, Clone)]
pub struct ByteSpec {
    pub nbytes: u8,
    pub offset: Val,
    pub relative: bool,
    pub big_endian: bool,
    pub string: Option<NumBase>,
    pub bitmask: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Match {
    Content(Content),
    Pcre {
        re: pcre2::bytes::Regex,
        relative: bool,
        negated: bool,
        src: String,
    },
    IsDataAt {
        n: Val,
        relative: bool,
        negated: bool,
    },
    Bsize(Cmp),
    ByteTest {
        spec: ByteSpec,
        op: CmpOp,
        negated: bool,
        value: Val,
    },
    ByteJump {
        spec: ByteSpec,
        multiplier: i64,
        align: bool,
        from_beginning: bool,
        from_end: bool,
        post_offset: i64,
    },
    ByteExtract {
        spec: ByteSpec,
        multiplier: i64,
        align: u8,
        var: u8,
    },
    ByteMath {
        spec: ByteSpec,
        oper: u8,
        rvalue: Val,
        var: u8,
    },
    Base64Decode {
        bytes: Option<i64>,
        offset: i64,
        relative: bool,
    },
}

impl Match {
    pub fn is_relative(&self) -> bool {
        match self {
            Match::Content(c) => c.is_relative(),
            Match::Pcre { relative, .. } => *relative,
            Match::IsDataAt { relative, .. } => *relative,
            Match::ByteTest { spec, .. }
            | Match::ByteJump { spec, .. }
            | Match::ByteExtract { spec, .. }
            | Match::ByteMath { spec, .. } => spec.relative,
            Match::Base64Decode { relative, .. } => *relative,
            Match::Bsize(_) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    DotPrefix,
    ToLower,
    ToUpper,
    StripWhitespace,
    CompressWhitespace,
    UrlDecode,
    Md5,
    Sha256,
}

/// The matches of one rule on one buffer, in rule order.
#[derive(Debug, Clone)]
pub struct BufGroup {
    pub buf: Buf,
    pub transforms: Vec<Transform>,
    pub matches: Vec<Match>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
    ByFlow,
    ByEither,
}

impl Track {
    pub fn parse(s: &str) -> Option<Track> {
        Some(match s.trim() {
            "by_src" => Track::BySrc,
            "by_dst" => Track::ByDst,
            "by_rule" => Track::ByRule,
            "by_both" => Track::ByBoth,
            "by_flow" => Track::ByFlow,
            "by_either" => Track::ByEither,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    Backoff,
    DetectionFilter,
}

#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u64,
    pub seconds: u64,
}

#[derive(Debug, Clone)]
pub enum FlowbitOp {
    Set(Vec<u32>),
    Unset(Vec<u32>),
    Toggle(Vec<u32>),
    IsSet(Vec<u32>, bool),
    IsNotSet(Vec<u32>, bool),
}

/// `flowint:NAME,OP[,VALUE]`: an integer per flow, modified (`=`, `+`, `-`) or tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowintOp {
    pub var: u32,
    pub op: FlowintCmd,
    pub value: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowintCmd {
    Assign,
    Add,
    Sub,
    Cmp(IntCmp),
    IsSet,
    NotSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntCmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl FlowintOp {
    /// Whether this is a modification (applied when the rule matches) rather than a test.
    pub fn modifies(&self) -> bool {
        matches!(
            self.op,
            FlowintCmd::Assign | FlowintCmd::Add | FlowintCmd::Sub
        )
    }
}

/// Whose bit an `xbits` operation reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XTrack {
    Src,
    Dst,
    Pair,
}

/// `xbits:CMD,NAME,track ip_src|ip_dst|ip_pair[,expire SECS]`: bits kept per host or host pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XbitOp {
    /// set, unset, toggle, isset, isnotset.
    pub cmd: FlowbitCmd,
    pub bit: u32,
    pub track: XTrack,
    /// Lifetime of a set bit in seconds (none: until unset).
    pub expire: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowbitCmd {
    Set,
    Unset,
    Toggle,
    IsSet,
    IsNotSet,
}

#[derive(Debug, Clone, Default)]
pub struct FlowOpts {
    pub to_server: bool,
    pub to_client: bool,
    pub established: bool,
    pub not_established: bool,
    pub stateless: bool,
    pub only_stream: bool,
    pub no_stream: bool,
}

#[derive(Debug, Clone)]
pub enum PktCheck {
    Dsize(Cmp),
    Ttl(Cmp),
    Itype(Cmp),
    Icode(Cmp),
    IcmpId(u16),
    IpProto(Cmp),
    Ack(u32),
    Seq(u32),
    Window(u16, bool),
    TcpMss(Cmp),
    /// flags: required bits set (exactly / plus any / any of), `ignore` mask, negation.
    Flags {
        bits: u8,
        mode: u8,
        mask: u8,
    },
    IpOpts(u8),
    StreamSize {
        side: u8,
        cmp: Cmp,
    },
    Urilen(Cmp, bool),
    AppLayerProto(Option<AppProto>, bool),
    SameIp,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    pub proto: Proto,
    pub src: AddrSet,
    pub sport: PortSet,
    pub dst: AddrSet,
    pub dport: PortSet,
    pub bidir: bool,
    pub sid: u32,
    pub gid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: String,
    pub category: String,
    pub severity: u8,
    pub flow: FlowOpts,
    pub groups: Vec<BufGroup>,
    pub checks: Vec<PktCheck>,
    pub flowbits: Vec<FlowbitOp>,
    pub xbits: Vec<XbitOp>,
    pub flowint: Vec<FlowintOp>,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<Threshold>,
    pub noalert: bool,
    pub nvars: u8,
    /// Application protocol required of the flow, from the header or implied by buffers.
    pub app: Option<AppProto>,
    /// Set when the rule inspects transaction buffers rather than packets.
    pub is_app_tx: bool,
    /// Direction the rule can match in: Some(true) to_server only, Some(false) to_client only.
    pub dir: Option<bool>,
    /// Index of the group and match chosen for the multi-pattern prefilter.
    pub fast: Option<(usize, usize)>,
    pub text_line: usize,
}

/// One classification.config entry.
#[derive(Debug, Clone)]
pub struct Class {
    pub desc: String,
    pub priority: u8,
}

pub fn default_classes() -> HashMap<String, Class> {
    let raw: &[(&str, &str, u8)] = &[
        ("not-suspicious", "Not Suspicious Traffic", 3),
        ("unknown", "Unknown Traffic", 3),
        ("bad-unknown", "Potentially Bad Traffic", 2),
        ("attempted-recon", "Attempted Information Leak", 2),
        ("successful-recon-limited", "Information Leak", 2),
        (
            "successful-recon-largescale",
            "Large Scale Information Leak",
            2,
        ),
        ("attempted-dos", "Attempted Denial of Service", 2),
        ("successful-dos", "Denial of Service", 2),
        ("attempted-user", "Attempted User Privilege Gain", 1),
        ("unsuccessful-user", "Unsuccessful User Privilege Gain", 1),
        ("successful-user", "Successful User Privilege Gain", 1),
        (
            "attempted-admin",
            "Attempted Administrator Privilege Gain",
            1,
        ),
        (
            "successful-admin",
            "Successful Administrator Privilege Gain",
            1,
        ),
        ("rpc-portmap-decode", "Decode of an RPC Query", 2),
        ("shellcode-detect", "Executable code was detected", 1),
        ("string-detect", "A suspicious string was detected", 3),
        (
            "suspicious-filename-detect",
            "A suspicious filename was detected",
            2,
        ),
        (
            "suspicious-login",
            "An attempted login using a suspicious username was detected",
            2,
        ),
        ("system-call-detect", "A system call was detected", 2),
        ("tcp-connection", "A TCP connection was detected", 4),
        ("trojan-activity", "A Network Trojan was detected", 1),
        (
            "unusual-client-port-connection",
            "A client was using an unusual port",
            2,
        ),
        ("network-scan", "Detection of a Network Scan", 3),
        (
            "denial-of-service",
            "Detection of a Denial of Service Attack",
            2,
        ),
        (
            "non-standard-protocol",
            "Detection of a non-standard protocol or event",
            2,
        ),
        (
            "protocol-command-decode",
            "Generic Protocol Command Decode",
            3,
        ),
        (
            "web-application-activity",
            "access to a potentially vulnerable web application",
            2,
        ),
        ("web-application-attack", "Web Application Attack", 1),
        ("misc-activity", "Misc activity", 3),
        ("misc-attack", "Misc Attack", 2),
        ("icmp-event", "Generic ICMP event", 3),
        (
            "inappropriate-content",
            "Inappropriate Content was Detected",
            1,
        ),
        (
            "policy-violation",
            "Potential Corporate Privacy Violation",
            1,
        ),
        (
            "default-login-attempt",
            "Attempt to login by a default username and password",
            2,
        ),
        (
            "targeted-activity",
            "Targeted Malicious Activity was Detected",
            1,
        ),
        ("exploit-kit", "Exploit Kit Activity Detected", 1),
        (
            "external-ip-check",
            "Device Retrieving External IP Address Detected",
            2,
        ),
        ("domain-c2", "Domain Observed Used for C2 Detected", 1),
        ("pup-activity", "Possibly Unwanted Program Detected", 2),
        (
            "credential-theft",
            "Successful Credential Theft Detected",
            1,
        ),
        (
            "social-engineering",
            "Possible Social Engineering Attempted",
            2,
        ),
        ("coin-mining", "Crypto Currency Mining Activity Detected", 2),
        (
            "command-and-control",
            "Malware Command and Control Activity Detected",
            1,
        ),
    ];
    raw.iter()
        .map(|(k, d, p)| {
            (
                k.to_string(),
                Class {
                    desc: d.to_string(),
                    priority: *p,
                },
            )
        })
        .collect()
}

/// Parse classification.config text (`config classification: name,description,priority`).
pub fn parse_classification(text: &str, into: &mut HashMap<String, Class>) -> Vec<String> {
    let mut errs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        let Some(rest) = l.strip_prefix("config classification:") else {
            continue;
        };
        let parts: Vec<&str> = rest.split(',').map(|s| s.trim()).collect();
        if parts.len() != 3 {
            errs.push(format!(
                "line {}: expected name,description,priority",
                i + 1
            ));
            continue;
        }
        match parts[2].parse::<u8>() {
            Ok(p) => {
                into.insert(
                    parts[0].to_string(),
                    Class {
                        desc: parts[1].to_string(),
                        priority: p,
                    },
                );
            }
            Err(_) => errs.push(format!("line {}: bad priority {:?}", i + 1, parts[2])),
        }
    }
    errs
}

/// Why a rule was not loaded: `Unsupported` names a keyword we do not implement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    Unsupported(String),
    Invalid(String),
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleError::Unsupported(k) => write!(f, "unsupported keyword `{k}`"),
            RuleError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

/// Registry of flowbit names shared by all rules of a rule set.
#[derive(Debug, Default)]
pub struct Names {
    pub flowbits: HashMap<String, u32>,
}

impl Names {
    fn bit(&mut self, n: &str) -> u32 {
        let len = self.flowbits.len() as u32;
        *self.flowbits.entry(n.trim().to_string()).or_insert(len)
    }
}

pub struct ParseCtx<'a> {
    pub vars: &'a Vars,
    pub classes: &'a HashMap<String, Class>,
    pub names: &'a mut Names,
}

fn inv<T>(m: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError::Invalid(m.into()))
}

/// Split the option part into `(keyword, value)` pairs, honouring quotes and `\;` escapes.
fn split_options(s: &str) -> Result<Vec<(String, Option<String>)>, RuleError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] as char).is_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut inq = false;
        let mut cur = String::new();
        while i < b.len() {
            let c = b[i];
            if c == b'\\' && i + 1 < b.len() {
                cur.push('\\');
                cur.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                if inq {
                    let mut j = i + 1;
                    while j < b.len() && (b[j] as char).is_whitespace() {
                        j += 1;
                    }
                    if j >= b.len() || b[j] == b';' {
                        inq = false;
                    }
                } else {
                    let prev = cur.trim_end().chars().last();
                    if matches!(prev, Some(':') | Some('!')) {
                        inq = true;
                    }
                }
            }
            if c == b';' && !inq {
                break;
            }
            cur.push(c as char);
            i += 1;
        }
        if i >= b.len() && start < b.len() && !cur.trim().is_empty() {
            return inv(format!("option `{}` is not terminated by ';'", cur.trim()));
        }
        i += 1;
        // Bytes were pushed as chars one by one; rebuild from the original to keep UTF-8 intact.
        let _ = start;
        let raw = cur;
        let raw =
            String::from_utf8_lossy(&raw.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>())
                .into_owned();
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match raw.find(':') {
            Some(p) => out.push((
                raw[..p].trim().to_string(),
                Some(raw[p + 1..].trim().to_string()),
            )),
            None => out.push((raw.to_string(), None)),
        }
    }
    Ok(out)
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn unescape(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                o.push(n);
            }
        } else {
            o.push(c);
        }
    }
    o
}

/// Decode a content string: `\"`-style escapes and `|41 42|` hex sections.
pub fn parse_content_bytes(v: &str) -> Result<Vec<u8>, RuleError> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut hex = false;
    let mut nib: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if hex {
            match c {
                b'|' => {
                    if nib.is_some() {
                        return inv(format!("odd number of hex digits in content {v:?}"));
                    }
                    hex = false;
                }
                b' ' | b'\t' => {}
                _ => {
                    let d = (c as char).to_digit(16).ok_or_else(|| {
                        RuleError::Invalid(format!("bad hex digit in content {v:?}"))
                    })? as u8;
                    match nib.take() {
                        Some(h) => out.push(h << 4 | d),
                        None => nib = Some(d),
                    }
                }
            }
            i += 1;
            continue;
        }
        match c {
            b'|' => hex = true,
            b'\\' if i + 1 < b.len() => {
                i += 1;
                out.push(b[i]);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if hex {
        return inv(format!("unterminated hex section in content {v:?}"));
    }
    Ok(out)
}

/// Parse one rule line. Returns `Ok(None)` for blank and comment lines.
pub fn parse_rule(
    line: &str,
    ctx: &mut ParseCtx<'_>,
) -> Result<Option<Rule>, (Option<u32>, RuleError)> {
    let l = line.trim();
    if l.is_empty() || l.starts_with('#') {
        return Ok(None);
    }
    let sid_hint = l.find("sid:").and_then(|p| {
        let r = &l[p + 4..];
        let e = r.find(';').unwrap_or(r.len());
        r[..e].trim().parse::<u32>().ok()
    });
    parse_rule_inner(l, ctx)
        .map(Some)
        .map_err(|e| (sid_hint, e))
}

fn parse_rule_inner(l: &str, ctx: &mut ParseCtx<'_>) -> Result<Rule, RuleError> {
    let open = l
        .find('(')
        .ok_or_else(|| RuleError::Invalid("no '(' starting the options".into()))?;
    if !l.ends_with(')') {
        return inv("options are not closed by ')'");
    }
    let header = &l[..open];
    let opts = &l[open + 1..l.len() - 1];
    // Tokenise the header, keeping bracketed lists (which may contain spaces) whole.
    let mut toks: Vec<String> = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in header.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c)
            }
            ']' => {
                depth -= 1;
                cur.push(c)
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    toks.push(std::mem::take(&mut cur));
                }
            }
            c if c.is_whitespace() => {}
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        toks.push(cur);
    }
    let action = match toks.first().map(|s| s.as_str()) {
        Some("alert") => Action::Alert,
        Some("drop") => Action::Drop,
        Some("reject") | Some("rejectsrc") | Some("rejectdst") | Some("rejectboth") => {
            Action::Reject
        }
        Some("pass") => Action::Pass,
        Some(a) => return Err(RuleError::Unsupported(format!("action {a}"))),
        None => return inv("empty rule header"),
    };
    let proto_s = toks
        .get(1)
        .ok_or_else(|| RuleError::Invalid("missing protocol".into()))?
        .to_ascii_lowercase();
    let proto = match proto_s.as_str() {
        "ip" | "ipv4" | "ipv6" | "pkthdr" => Proto::Ip,
        "tcp" => Proto::Tcp,
        "tcp-pkt" => Proto::TcpPkt,
        "tcp-stream" => Proto::TcpStream,
        "udp" => Proto::Udp,
        "icmp" | "icmpv4" | "icmpv6" => Proto::Icmp,
        p => Proto::App(
            AppProto::from_name(p)
                .ok_or_else(|| RuleError::Unsupported(format!("protocol {p}")))?,
        ),
    };
    let (src, sport, bidir, dst, dport) = if toks.len() == 2 {
        (
            AddrSet::any(),
            PortSet::any(),
            false,
            AddrSet::any(),
            PortSet::any(),
        )
    } else if toks.len() == 7 {
        let bidir = match toks[4].as_str() {
            "->" => false,
            "<>" => true,
            "=>" => return Err(RuleError::Unsupported("direction =>".into())),
            d => return inv(format!("bad direction {d:?}")),
        };
        (
            parse_addr(&toks[2], ctx.vars)
                .map_err(|e| RuleError::Invalid(format!("source address: {e}")))?,
            parse_ports(&toks[3], ctx.vars)
                .map_err(|e| RuleError::Invalid(format!("source port: {e}")))?,
            bidir,
            parse_addr(&toks[5], ctx.vars)
                .map_err(|e| RuleError::Invalid(format!("destination address: {e}")))?,
            parse_ports(&toks[6], ctx.vars)
                .map_err(|e| RuleError::Invalid(format!("destination port: {e}")))?,
        )
    } else {
        return inv(format!("rule header has {} fields, expected 7", toks.len()));
    };

    let mut r = Rule {
        action,
        proto,
        src,
        sport,
        dst,
        dport,
        bidir,
        sid: 0,
        gid: 1,
        rev: 0,
        msg: String::new(),
        classtype: String::new(),
        category: String::new(),
        severity: 3,
        flow: FlowOpts::default(),
        groups: Vec::new(),
        checks: Vec::new(),
        flowbits: Vec::new(),
        xbits: Vec::new(),
        flowint: Vec::new(),
        threshold: None,
        detection_filter: None,
        noalert: false,
        nvars: 0,
        app: match proto {
            Proto::App(a) => Some(a),
            _ => None,
        },
        is_app_tx: false,
        dir: None,
        fast: None,
        text_line: 0,
    };
    let mut priority: Option<u8> = None;
    let mut have_sid = false;
    // Flat list of (buffer, match, transforms) in rule order; grouped per buffer at the end.
    let mut items: Vec<(Buf, Match)> = Vec::new();
    let mut transforms: HashMap<Buf, Vec<Transform>> = HashMap::new();
    let mut cur_buf = Buf::Pkt;
    let mut var_names: Vec<String> = Vec::new();
    let mut last_content: Option<usize> = None;
    let mut sticky_set = false;

    let val_of = |s: &str, vars: &Vec<String>| -> Result<Val, RuleError> {
        let s = s.trim();
        if let Some(n) = parse_int(s) {
            return Ok(Val::N(n));
        }
        match vars.iter().position(|v| v == s) {
            Some(i) => Ok(Val::Var(i as u8)),
            None => inv(format!("unknown value or byte_extract variable {s:?}")),
        }
    };

    for (key, val) in split_options(opts)? {
        let v = val.as_deref().unwrap_or("");
        // A relative keyword outside any sticky buffer belongs to the buffer of the match it is
        // relative to (`content:"x"; http_uri; isdataat:1,relative;` inspects the URI).
        let is_rel = v.split(',').any(|p| p.trim() == "relative");
        let rel_buf = match items.last() {
            Some((b, _)) if is_rel && cur_buf == Buf::Pkt => *b,
            _ => cur_buf,
        };
        let need = |what: &str| -> Result<(), RuleError> {
            if val.is_none() {
                inv(format!("keyword `{key}` needs a value ({what})"))
            } else {
                Ok(())
            }
        };
        macro_rules! last_c {
            () => {{
                let idx = last_content.ok_or_else(|| {
                    RuleError::Invalid(format!("`{key}` without a preceding content"))
                })?;
                match &mut items[idx].1 {
                    Match::Content(c) => c,
                    _ => return inv(format!("`{key}` without a preceding content")),
                }
            }};
        }
        match key.as_str() {
            "msg" => r.msg = unescape(unquote(v)),
            "sid" => {
                r.sid = v
                    .trim()
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad sid {v:?}")))?;
                have_sid = true
            }
            "rev" => {
                r.rev = v
                    .trim()
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad rev {v:?}")))?
            }
            "gid" => {
                r.gid = v
                    .trim()
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad gid {v:?}")))?
            }
            "classtype" => {
                let c = v.trim();
                match ctx.classes.get(c) {
                    Some(cl) => {
                        r.category = cl.desc.clone();
                        r.severity = cl.priority;
                    }
                    None => return inv(format!("unknown classtype {c:?}")),
                }
                r.classtype = c.to_string();
            }
            "priority" => {
                priority = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| RuleError::Invalid(format!("bad priority {v:?}")))?,
                )
            }
            "reference" | "metadata" | "target" | "tag" | "rawbytes" | "requires" => {}
            "noalert" => r.noalert = true,
            "content" | "uricontent" => {
                need("pattern")?;
                let mut s = v.trim();
                let negated = s.starts_with('!');
                if negated {
                    s = s[1..].trim();
                }
                if !(s.starts_with('"') && s.ends_with('"') && s.len() >= 2) {
                    return inv(format!("content {v:?} is not quoted"));
                }
                let pat = parse_content_bytes(&s[1..s.len() - 1])?;
                if pat.is_empty() {
                    return inv("empty content");
                }
                let buf = if key == "uricontent" {
                    Buf::HttpUri
                } else {
                    cur_buf
                };
                items.push((
                    buf,
                    Match::Content(Content {
                        pat,
                        nocase: false,
                        negated,
                        offset: None,
                        depth: None,
                        distance: None,
                        within: None,
                        startswith: false,
                        endswith: false,
                        fast_pattern: false,
                        fast_only: false,
                    }),
                ));
                last_content = Some(items.len() - 1);
            }
            "nocase" => last_c!().nocase = true,
            "offset" => {
                let x = val_of(v, &var_names)?;
                last_c!().offset = Some(x)
            }
            "depth" => {
                let x = val_of(v, &var_names)?;
                last_c!().depth = Some(x)
            }
            "distance" => {
                let x = val_of(v, &var_names)?;
                last_c!().distance = Some(x)
            }
            "within" => {
                let x = val_of(v, &var_names)?;
                last_c!().within = Some(x)
            }
            "startswith" => last_c!().startswith = true,
            "endswith" => last_c!().endswith = true,
            "fast_pattern" => {
                let c = last_c!();
                c.fast_pattern = true;
                if v.trim() == "only" {
                    c.fast_only = true;
                }
            }
            "prefilter" => {
                if let Some(Match::Content(c)) = last_content
                    .and_then(|i| items.get_mut(i))
                    .map(|x| &mut x.1)
                {
                    c.fast_pattern = true;
                }
            }
            k if Buf::from_modifier(k).is_some() => {
                let b = Buf::from_modifier(k).unwrap();
                let idx = last_content.ok_or_else(|| {
                    RuleError::Invalid(format!("`{k}` without a preceding content"))
                })?;
                items[idx].0 = b;
            }
            k if Buf::from_sticky(k).is_some() => {
                cur_buf = Buf::from_sticky(k).unwrap();
                sticky_set = true;
                if k == "base64_data" {
                    cur_buf = Buf::Base64Data;
                }
            }
            "dotprefix"
            | "to_lowercase"
            | "to_uppercase"
            | "strip_whitespace"
            | "compress_whitespace"
            | "url_decode"
            | "to_md5"
            | "to_sha256" => {
                let t = match key.as_str() {
                    "dotprefix" => Transform::DotPrefix,
                    "to_lowercase" => Transform::ToLower,
                    "to_uppercase" => Transform::ToUpper,
                    "strip_whitespace" => Transform::StripWhitespace,
                    "compress_whitespace" => Transform::CompressWhitespace,
                    "url_decode" => Transform::UrlDecode,
                    "to_md5" => Transform::Md5,
                    _ => Transform::Sha256,
                };
                if !sticky_set {
                    return inv(format!("transform `{key}` before any sticky buffer"));
                }
                transforms.entry(cur_buf).or_default().push(t);
            }
            "pcre" => {
                need("regex")?;
                let mut s = v.trim();
                let negated = s.starts_with('!');
                if negated {
                    s = s[1..].trim();
                }
                let s = unquote(s);
                let s = unescape_pcre_quotes(s);
                let (re, relative, buf) = compile_pcre(&s)?;
                let buf = buf.unwrap_or(cur_buf);
                items.push((
                    buf,
                    Match::Pcre {
                        re,
                        relative,
                        negated,
                        src: s.clone(),
                    },
                ));
                last_content = None;
            }
            "isdataat" => {
                need("offset")?;
                let mut parts = v.split(',').map(|s| s.trim());
                let mut first = parts.next().unwrap_or("");
                let negated = first.starts_with('!');
                if negated {
                    first = &first[1..];
                }
                let n = val_of(first, &var_names)?;
                let relative = parts.any(|p| p == "relative");
                items.push((
                    rel_buf,
                    Match::IsDataAt {
                        n,
                        relative,
                        negated,
                    },
                ));
            }
            "bsize" => {
                need("size")?;
                items.push((
                    cur_buf,
                    Match::Bsize(Cmp::parse(v).map_err(RuleError::Invalid)?),
                ));
            }
            "byte_test" => {
                let (spec, op, negated, value) = parse_byte_test(v, &var_names)?;
                items.push((
                    rel_buf,
                    Match::ByteTest {
                        spec,
                        op,
                        negated,
                        value,
                    },
                ));
            }
            "byte_jump" => {
                let m = parse_byte_jump(v, &var_names)?;
                items.push((rel_buf, m));
            }
            "byte_extract" => {
                let (m, name) = parse_byte_extract(v, var_names.len() as u8, &var_names)?;
                var_names.push(name);
                items.push((rel_buf, m));
            }
            "byte_math" => {
                let (m, name) = parse_byte_math(v, var_names.len() as u8, &var_names)?;
                var_names.push(name);
                items.push((rel_buf, m));
            }
            "base64_decode" => {
                let mut bytes = None;
                let mut offset = 0;
                let mut relative = false;
                for p in v.split(',').map(|s| s.trim()).filter(|s| !s.is_empty()) {
                    let mut kv = p.split_whitespace();
                    match (kv.next(), kv.next()) {
                        (Some("bytes"), Some(n)) => bytes = parse_int(n),
                        (Some("offset"), Some(n)) => offset = parse_int(n).unwrap_or(0),
                        (Some("relative"), None) => relative = true,
                        _ => return inv(format!("bad base64_decode option {p:?}")),
                    }
                }
                items.push((
                    cur_buf,
                    Match::Base64Decode {
                        bytes,
                        offset,
                        relative,
                    },
                ));
            }
            "flow" => {
                for p in v.split(',').map(|s| s.trim()) {
                    match p {
                        "to_server" | "from_client" => r.flow.to_server = true,
                        "to_client" | "from_server" => r.flow.to_client = true,
                        "established" => r.flow.established = true,
                        "not_established" => r.flow.not_established = true,
                        "stateless" => r.flow.stateless = true,
                        "only_stream" => r.flow.only_stream = true,
                        "no_stream" => r.flow.no_stream = true,
                        "only_frag" | "no_frag" => {
                            return Err(RuleError::Unsupported(format!("flow:{p}")))
                        }
                        _ => return inv(format!("bad flow option {p:?}")),
                    }
                }
                if r.flow.to_server && r.flow.to_client {
                    return inv("flow has both to_server and to_client");
                }
            }
            "flowbits" => {
                need("command")?;
                let (cmd, arg) = match v.split_once(',') {
                    Some((c, a)) => (c.trim(), Some(a.trim())),
                    None => (v.trim(), None),
                };
                if cmd == "noalert" {
                    r.noalert = true;
                    continue;
                }
                let arg =
                    arg.ok_or_else(|| RuleError::Invalid(format!("flowbits:{cmd} needs a name")))?;
                let (names, or) = if arg.contains('|') {
                    (arg.split('|').collect::<Vec<_>>(), true)
                } else if arg.contains('&') {
                    (arg.split('&').collect(), false)
                } else {
                    (vec![arg], false)
                };
                let ids: Vec<u32> = names.iter().map(|n| ctx.names.bit(n)).collect();
                r.flowbits.push(match cmd {
                    "set" => FlowbitOp::Set(ids),
                    "unset" => FlowbitOp::Unset(ids),
                    "toggle" => FlowbitOp::Toggle(ids),
                    "isset" => FlowbitOp::IsSet(ids, or),
                    "isnotset" => FlowbitOp::IsNotSet(ids, or),
                    _ => return inv(format!("bad flowbits command {cmd:?}")),
                });
            }
            "flowint" => {
                need("name, operator and value")?;
                let parts: Vec<&str> = v.split(',').map(str::trim).collect();
                let (name, op) = match parts.as_slice() {
                    [n, o, ..] if !n.is_empty() => (*n, *o),
                    _ => return inv(format!("flowint {v:?}: expected NAME,OPERATOR[,VALUE]")),
                };
                let op = match op {
                    "=" => FlowintCmd::Assign,
                    "+" => FlowintCmd::Add,
                    "-" => FlowintCmd::Sub,
                    "==" => FlowintCmd::Cmp(IntCmp::Eq),
                    "!=" => FlowintCmd::Cmp(IntCmp::Ne),
                    "<" => FlowintCmd::Cmp(IntCmp::Lt),
                    ">" => FlowintCmd::Cmp(IntCmp::Gt),
                    "<=" => FlowintCmd::Cmp(IntCmp::Le),
                    ">=" => FlowintCmd::Cmp(IntCmp::Ge),
                    "isset" => FlowintCmd::IsSet,
                    "notset" | "isnotset" => FlowintCmd::NotSet,
                    o => return inv(format!("flowint: unknown operator {o:?}")),
                };
                let value = match (op, parts.get(2)) {
                    (FlowintCmd::IsSet | FlowintCmd::NotSet, _) => 0,
                    (_, Some(x)) => match x.parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => {
                            return Err(RuleError::Unsupported(
                                "flowint with a variable operand".into(),
                            ))
                        }
                    },
                    (_, None) => return inv(format!("flowint {v:?}: missing value")),
                };
                let var = ctx.names.bit(&format!("flowint:{name}"));
                r.flowint.push(FlowintOp { var, op, value });
            }
            "xbits" => {
                need("command")?;
                let parts: Vec<&str> = v.split(',').map(str::trim).collect();
                if parts[0] == "noalert" {
                    r.noalert = true;
                    continue;
                }
                let cmd = match parts[0] {
                    "set" => FlowbitCmd::Set,
                    "unset" => FlowbitCmd::Unset,
                    "toggle" => FlowbitCmd::Toggle,
                    "isset" => FlowbitCmd::IsSet,
                    "isnotset" => FlowbitCmd::IsNotSet,
                    c => return inv(format!("bad xbits command {c:?}")),
                };
                let name = parts
                    .get(1)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| RuleError::Invalid("xbits needs a name".into()))?;
                let mut track = None;
                let mut expire = None;
                for p in &parts[2..] {
                    let mut kv = p.split_whitespace();
                    match (kv.next(), kv.next()) {
                        (Some("track"), Some("ip_src")) => track = Some(XTrack::Src),
                        (Some("track"), Some("ip_dst")) => track = Some(XTrack::Dst),
                        (Some("track"), Some("ip_pair")) => track = Some(XTrack::Pair),
                        (Some("track"), Some(t)) => {
                            return Err(RuleError::Unsupported(format!("xbits track {t}")))
                        }
                        (Some("expire"), Some(n)) => {
                            expire = Some(n.parse().map_err(|_| {
                                RuleError::Invalid(format!("xbits: bad expire {n:?}"))
                            })?)
                        }
                        _ => return inv(format!("xbits: unexpected {p:?}")),
                    }
                }
                let track =
                    track.ok_or_else(|| RuleError::Invalid("xbits needs `track`".into()))?;
                let bit = ctx.names.bit(&format!("xbits:{name}"));
                r.xbits.push(XbitOp {
                    cmd,
                    bit,
                    track,
                    expire,
                });
            }
            "threshold" | "detection_filter" => {
                let mut kind = if key == "detection_filter" {
                    Some(ThresholdKind::DetectionFilter)
                } else {
                    None
                };
                let mut track = None;
                let mut count = None;
                let mut seconds = None;
                for p in v.split(',').map(|s| s.trim()) {
                    let mut kv = p.split_whitespace();
                    match (kv.next(), kv.next()) {
                        (Some("type"), Some(t)) => {
                            kind = Some(match t {
                                "limit" => ThresholdKind::Limit,
                                "threshold" => ThresholdKind::Threshold,
                                "both" => ThresholdKind::Both,
                                "backoff" => ThresholdKind::Backoff,
                                _ => return inv(format!("bad threshold type {t:?}")),
                            })
                        }
                        (Some("track"), Some(t)) => {
                            track =
                                Some(Track::parse(t).ok_or_else(|| {
                                    RuleError::Invalid(format!("bad track {t:?}"))
                                })?)
                        }
                        (Some("count"), Some(n)) => count = n.parse().ok(),
                        (Some("seconds"), Some(n)) => seconds = n.parse().ok(),
                        (Some("multiplier"), Some(n)) => seconds = seconds.or(n.parse().ok()),
                        _ => return inv(format!("bad {key} option {p:?}")),
                    }
                }
                let kind = kind.ok_or_else(|| RuleError::Invalid(format!("{key} without type")))?;
                let t = Threshold {
                    kind,
                    track: track
                        .ok_or_else(|| RuleError::Invalid(format!("{key} without track")))?,
                    count: count
                        .ok_or_else(|| RuleError::Invalid(format!("{key} without count")))?,
                    seconds: seconds.unwrap_or(0),
                };
                if key == "detection_filter" {
                    r.detection_filter = Some(t)
                } else {
                    r.threshold = Some(t)
                }
            }
            "dsize" => r
                .checks
                .push(PktCheck::Dsize(Cmp::parse(v).map_err(RuleError::Invalid)?)),
            "ttl" => r
                .checks
                .push(PktCheck::Ttl(Cmp::parse(v).map_err(RuleError::Invalid)?)),
            "itype" => r
                .checks
                .push(PktCheck::Itype(Cmp::parse(v).map_err(RuleError::Invalid)?)),
            "icode" => r
                .checks
                .push(PktCheck::Icode(Cmp::parse(v).map_err(RuleError::Invalid)?)),
            "icmp_id" => r.checks.push(PktCheck::IcmpId(
                v.trim()
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad icmp_id {v:?}")))?,
            )),
            "ip_proto" => {
                let p = match v.trim() {
                    "tcp" | "TCP" => "6",
                    "udp" | "UDP" => "17",
                    "icmp" | "ICMP" => "1",
                    "ipv6-icmp" => "58",
                    "gre" | "GRE" => "47",
                    "esp" => "50",
                    "ah" => "51",
                    x => x,
                };
                r.checks.push(PktCheck::IpProto(
                    Cmp::parse(p).map_err(RuleError::Invalid)?,
                ))
            }
            "ack" => r.checks.push(PktCheck::Ack(
                v.trim()
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad ack {v:?}")))?,
            )),
            "seq" => r.checks.push(PktCheck::Seq(
                v.trim()
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad seq {v:?}")))?,
            )),
            "window" => {
                let s = v.trim();
                let (neg, s) = match s.strip_prefix('!') {
                    Some(x) => (true, x),
                    None => (false, s),
                };
                r.checks.push(PktCheck::Window(
                    s.parse()
                        .map_err(|_| RuleError::Invalid(format!("bad window {v:?}")))?,
                    neg,
                ))
            }
            "tcp.mss" => r
                .checks
                .push(PktCheck::TcpMss(Cmp::parse(v).map_err(RuleError::Invalid)?)),
            "flags" => r.checks.push(parse_flags(v)?),
            "ipopts" => {
                let o = match v.trim() {
                    "rr" => 7,
                    "eol" => 0,
                    "nop" => 1,
                    "ts" => 68,
                    "sec" => 130,
                    "esec" => 133,
                    "lsrr" => 131,
                    "ssrr" => 137,
                    "satid" => 136,
                    "any" => 255,
                    o => return inv(format!("bad ipopts {o:?}")),
                };
                r.checks.push(PktCheck::IpOpts(o))
            }
            "stream_size" => {
                let p: Vec<&str> = v.split(',').map(|s| s.trim()).collect();
                if p.len() != 3 {
                    return inv(format!("bad stream_size {v:?}"));
                }
                let side = match p[0] {
                    "server" => 0,
                    "client" => 1,
                    "both" => 2,
                    "either" => 3,
                    s => return inv(format!("bad stream_size side {s:?}")),
                };
                let cmp = Cmp::parse(&format!("{}{}", p[1], p[2])).map_err(RuleError::Invalid)?;
                r.checks.push(PktCheck::StreamSize { side, cmp })
            }
            "urilen" => {
                let (c, raw) = match v.split_once(',') {
                    Some((c, m)) => (c, m.trim() == "raw"),
                    None => (v, false),
                };
                r.checks.push(PktCheck::Urilen(
                    Cmp::parse(c).map_err(RuleError::Invalid)?,
                    raw,
                ));
                r.app.get_or_insert(AppProto::Http);
                r.is_app_tx = true;
            }
            "app-layer-protocol" => {
                let s = v.trim();
                let (neg, s) = match s.strip_prefix('!') {
                    Some(x) => (true, x),
                    None => (false, s),
                };
                let s = s.split(',').next().unwrap_or("").trim();
                let p =
                    if s == "unknown" {
                        None
                    } else {
                        Some(AppProto::from_name(s).ok_or_else(|| {
                            RuleError::Unsupported(format!("app-layer-protocol:{s}"))
                        })?)
                    };
                r.checks.push(PktCheck::AppLayerProto(p, neg))
            }
            "sameip" => r.checks.push(PktCheck::SameIp),
            other => return Err(RuleError::Unsupported(other.to_string())),
        }
    }
    if !have_sid {
        return inv("rule has no sid");
    }
    if let Some(p) = priority {
        r.severity = p;
    }
    r.nvars = var_names.len() as u8;

    // Group matches per buffer, keeping rule order within each buffer.
    let mut order: Vec<Buf> = Vec::new();
    for (b, _) in &items {
        if !order.contains(b) {
            order.push(*b);
        }
    }
    for b in order {
        let matches: Vec<Match> = items
            .iter()
            .filter(|(x, _)| *x == b)
            .map(|(_, m)| m.clone())
            .collect();
        r.groups.push(BufGroup {
            buf: b,
            transforms: transforms.remove(&b).unwrap_or_default(),
            matches,
        });
    }
    // A sticky buffer with only a transform and no match still binds the rule to that buffer's protocol.
    for b in transforms.keys() {
        if let Some(a) = b.app() {
            r.app.get_or_insert(a);
        }
    }

    // Infer protocol and direction from buffers.
    let mut side_req = false;
    let mut side_resp = false;
    for g in &r.groups {
        if let Some(a) = g.buf.app() {
            match r.app {
                None => r.app = Some(a),
                Some(x) if x == a => {}
                Some(AppProto::Http2) if a == AppProto::Http => {}
                Some(x) => {
                    return inv(format!(
                        "buffer {:?} does not belong to protocol {}",
                        g.buf,
                        x.name()
                    ))
                }
            }
            r.is_app_tx = true;
        }
        if g.buf == Buf::FileData && r.app.is_some() {
            r.is_app_tx = true;
        }
        match g.buf.side() {
            Side::Request => side_req = true,
            Side::Response => side_resp = true,
            _ => {}
        }
    }
    if r.groups
        .iter()
        .any(|g| g.buf == Buf::FileData || g.buf == Buf::Base64Data)
        && r.app.is_none()
    {
        // file.data on a plain tcp rule: Suricata binds it to HTTP/SMTP file tracking; we support HTTP.
        r.app = Some(AppProto::Http);
        r.is_app_tx = true;
    }
    if r.app.is_some()
        && matches!(
            r.app,
            Some(AppProto::Http) | Some(AppProto::Dns) | Some(AppProto::Tls) | Some(AppProto::Ssh)
        )
        && !r.groups.iter().any(|g| g.buf.side() == Side::Packet)
    {
        // Rules on an app protocol without packet buffers are inspected per transaction.
        // Even without buffers (e.g. `alert http any any -> any any (sid:1;)`): once per transaction.
        r.is_app_tx = true;
    }
    if r.groups.iter().any(|g| g.buf == Buf::Pkt) && r.is_app_tx {
        // Mixing packet payload with transaction buffers: evaluate per packet with tx buffers of the flow.
    }
    if side_req && side_resp {
        r.dir = None;
    } else if side_req {
        r.dir = Some(true);
    } else if side_resp {
        r.dir = Some(false);
    }
    if r.flow.to_server {
        if r.dir == Some(false) && side_resp && !side_req {
            // e.g. to_server with http.stat_code: Suricata rejects this combination.
            return inv("flow:to_server with response-only buffers");
        }
        r.dir = Some(true);
    } else if r.flow.to_client {
        r.dir = Some(false);
    }
    if let Some(bad) = r.groups.iter().find(|g| {
        g.buf.app().is_some()
            && matches!(r.proto, Proto::Udp | Proto::Icmp)
            && g.buf.app() != Some(AppProto::Dns)
    }) {
        return inv(format!(
            "buffer {:?} cannot be used on this protocol",
            bad.buf
        ));
    }

    choose_fast_pattern(&mut r);
    Ok(r)
}

fn unescape_pcre_quotes(s: &str) -> String {
    // Inside a rule, `\;` and `\"` escape rule syntax, not regex syntax.
    s.replace("\\;", ";").replace("\\\"", "\"")
}

/// `/regex/flags` → compiled regex, relative flag, and a buffer implied by a modifier flag.
fn compile_pcre(s: &str) -> Result<(pcre2::bytes::Regex, bool, Option<Buf>), RuleError> {
    let s = s.trim();
    if !s.starts_with('/') {
        return inv(format!("pcre {s:?} does not start with '/'"));
    }
    let end = s
        .rfind('/')
        .filter(|&e| e > 0)
        .ok_or_else(|| RuleError::Invalid(format!("pcre {s:?} is not closed by '/'")))?;
    let pat = &s[1..end];
    let flags = &s[end + 1..];
    let mut b = pcre2::bytes::RegexBuilder::new();
    b.jit_if_available(true);
    let mut relative = false;
    let mut buf = None;
    let mut anchored = false;
    let mut ungreedy = false;
    for f in flags.chars() {
        match f {
            'i' => {
                b.caseless(true);
            }
            's' => {
                b.dotall(true);
            }
            'm' => {
                b.multi_line(true);
            }
            'x' => {
                b.extended(true);
            }
            'A' => anchored = true,
            'E' => {}
            'G' => ungreedy = true,
            'R' => relative = true,
            'B' | 'O' => {}
            'U' => buf = Some(Buf::HttpUri),
            'I' => buf = Some(Buf::HttpUriRaw),
            'P' => buf = Some(Buf::HttpRequestBody),
            'Q' => buf = Some(Buf::FileData),
            'H' => buf = Some(Buf::HttpHeader),
            'D' => buf = Some(Buf::HttpHeaderRaw),
            'M' => buf = Some(Buf::HttpMethod),
            'C' => buf = Some(Buf::HttpCookie),
            'S' => buf = Some(Buf::HttpStatCode),
            'Y' => buf = Some(Buf::HttpStatMsg),
            'V' => buf = Some(Buf::HttpUserAgent),
            'W' => buf = Some(Buf::HttpHost),
            c => return inv(format!("unknown pcre flag {c:?} in {s:?}")),
        }
    }
    let mut p = String::new();
    if ungreedy {
        p.push_str("(?U)");
    }
    if anchored {
        p.push_str("\\A(?:");
        p.push_str(pat);
        p.push(')');
    } else {
        p.push_str(pat);
    }
    let re = b
        .build(&p)
        .map_err(|e| RuleError::Invalid(format!("pcre {s:?}: {e}")))?;
    Ok((re, relative, buf))
}

fn parse_flags(v: &str) -> Result<PktCheck, RuleError> {
    let (fl, ign) = match v.split_once(',') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (v.trim(), None),
    };
    let bit = |c: char| -> Result<u8, RuleError> {
        Ok(match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            '0' => 0,
            c => return inv(format!("bad tcp flag {c:?}")),
        })
    };
    let mut mode = 0u8; // 0 exact, 1 '+', 2 '*', 3 '!'
    let mut bits = 0u8;
    for c in fl.chars() {
        match c {
            '+' => mode = 1,
            '*' => mode = 2,
            '!' => mode = 3,
            c => bits |= bit(c)?,
        }
    }
    let mut mask = 0xffu8;
    if let Some(i) = ign {
        for c in i.chars() {
            mask &= !bit(c)?;
        }
    }
    Ok(PktCheck::Flags { bits, mode, mask })
}

fn byte_common(
    parts: &[&str],
    idx_from: usize,
    spec: &mut ByteSpec,
) -> Result<Vec<String>, RuleError> {
    let mut rest = Vec::new();
    let mut i = idx_from;
    while i < parts.len() {
        let p = parts[i];
        match p {
            "relative" => spec.relative = true,
            "big" => spec.big_endian = true,
            "little" => spec.big_endian = false,
            "string" => spec.string = Some(spec.string.unwrap_or(NumBase::Dec)),
            "hex" => spec.string = Some(NumBase::Hex),
            "dec" => spec.string = Some(NumBase::Dec),
            "oct" => spec.string = Some(NumBase::Oct),
            "dce" => return Err(RuleError::Unsupported("dce byte option".into())),
            _ if p.starts_with("bitmask") => {
                let m = p["bitmask".len()..].trim();
                spec.bitmask = Some(
                    parse_int(m).ok_or_else(|| RuleError::Invalid(format!("bad bitmask {p:?}")))?
                        as u64,
                );
            }
            _ if p.starts_with("endian") => spec.big_endian = p.ends_with("big"),
            _ => rest.push(p.to_string()),
        }
        i += 1;
    }
    Ok(rest)
}

fn parse_byte_test(v: &str, vars: &[String]) -> Result<(ByteSpec, CmpOp, bool, Val), RuleError> {
    let parts: Vec<&str> = v.split(',').map(|s| s.trim()).collect();
    if parts.len() < 4 {
        return inv(format!(
            "byte_test {v:?} needs bytes, operator, value, offset"
        ));
    }
    let nbytes = parts[0]
        .parse::<u8>()
        .map_err(|_| RuleError::Invalid(format!("bad byte count in {v:?}")))?;
    let mut op_s = parts[1];
    let negated = op_s.starts_with('!');
    if negated {
        op_s = &op_s[1..];
    }
    let op = match op_s {
        "=" | "" => CmpOp::Eq,
        "<" => CmpOp::Lt,
        ">" => CmpOp::Gt,
        "<=" => CmpOp::Le,
        ">=" => CmpOp::Ge,
        "&" => CmpOp::And,
        "^" => CmpOp::Or,
        o => return inv(format!("bad byte_test operator {o:?}")),
    };
    let value = val_from(parts[2], vars)?;
    let offset = val_from(parts[3], vars)?;
    let mut spec = ByteSpec {
        nbytes,
        offset,
        relative: false,
        big_endian: true,
        string: None,
        bitmask: None,
    };
    let rest = byte_common(&parts, 4, &mut spec)?;
    if let Some(x) = rest.first() {
        return inv(format!("bad byte_test option {x:?}"));
    }
    check_nbytes(&spec)?;
    Ok((spec, op, negated, value))
}

fn check_nbytes(spec: &ByteSpec) -> Result<(), RuleError> {
    let max = if spec.string.is_some() { 23 } else { 8 };
    if spec.nbytes > max {
        return inv(format!("byte count {} out of range", spec.nbytes));
    }
    Ok(())
}

fn val_from(s: &str, vars: &[String]) -> Result<Val, RuleError> {
    if let Some(n) = parse_int(s) {
        return Ok(Val::N(n));
    }
    match vars.iter().position(|v| v == s.trim()) {
        Some(i) => Ok(Val::Var(i as u8)),
        None => inv(format!("unknown value or variable {s:?}")),
    }
}

fn parse_byte_jump(v: &str, vars: &[String]) -> Result<Match, RuleError> {
    let parts: Vec<&str> = v.split(',').map(|s| s.trim()).collect();
    if parts.len() < 2 {
        return inv(format!("byte_jump {v:?} needs bytes, offset"));
    }
    let nbytes = parts[0]
        .parse::<u8>()
        .map_err(|_| RuleError::Invalid(format!("bad byte count in {v:?}")))?;
    let offset = val_from(parts[1], vars)?;
    let mut spec = ByteSpec {
        nbytes,
        offset,
        relative: false,
        big_endian: true,
        string: None,
        bitmask: None,
    };
    let rest = byte_common(&parts, 2, &mut spec)?;
    let (mut multiplier, mut align, mut fb, mut fe, mut post) = (1, false, false, false, 0);
    for p in rest {
        let mut kv = p.split_whitespace();
        match (kv.next(), kv.next()) {
            (Some("multiplier"), Some(n)) => multiplier = parse_int(n).unwrap_or(1),
            (Some("align"), None) => align = true,
            (Some("from_beginning"), None) => fb = true,
            (Some("from_end"), None) => fe = true,
            (Some("post_offset"), Some(n)) => post = parse_int(n).unwrap_or(0),
            _ => return inv(format!("bad byte_jump option {p:?}")),
        }
    }
    check_nbytes(&spec)?;
    Ok(Match::ByteJump {
        spec,
        multiplier,
        align,
        from_beginning: fb,
        from_end: fe,
        post_offset: post,
    })
}

fn parse_byte_extract(v: &str, var: u8, vars: &[String]) -> Result<(Match, String), RuleError> {
    let parts: Vec<&str> = v.split(',').map(|s| s.trim()).collect();
    if parts.len() < 3 {
        return inv(format!("byte_extract {v:?} needs bytes, offset, name"));
    }
    let nbytes = parts[0]
        .parse::<u8>()
        .map_err(|_| RuleError::Invalid(format!("bad byte count in {v:?}")))?;
    let offset = val_from(parts[1], vars)?;
    let name = parts[2].to_string();
    let mut spec = ByteSpec {
        nbytes,
        offset,
        relative: false,
        big_endian: true,
        string: None,
        bitmask: None,
    };
    let rest = byte_common(&parts, 3, &mut spec)?;
    let (mut multiplier, mut align) = (1, 0u8);
    for p in rest {
        let mut kv = p.split_whitespace();
        match (kv.next(), kv.next()) {
            (Some("multiplier"), Some(n)) => multiplier = parse_int(n).unwrap_or(1),
            (Some("align"), Some(n)) => align = parse_int(n).unwrap_or(0) as u8,
            _ => return inv(format!("bad byte_extract option {p:?}")),
        }
    }
    check_nbytes(&spec)?;
    Ok((
        Match::ByteExtract {
            spec,
            multiplier,
            align,
            var,
        },
        name,
    ))
}

fn parse_byte_math(v: &str, var: u8, vars: &[String]) -> Result<(Match, String), RuleError> {
    let mut spec = ByteSpec {
        nbytes: 0,
        offset: Val::N(0),
        relative: false,
        big_endian: true,
        string: None,
        bitmask: None,
    };
    let (mut oper, mut rvalue, mut name) = (None, None, None);
    for p in v.split(',').map(|s| s.trim()) {
        let mut kv = p.splitn(2, char::is_whitespace);
        let k = kv.next().unwrap_or("");
        let a = kv.next().map(|s| s.trim());
        match (k, a) {
            ("bytes", Some(n)) => {
                spec.nbytes = n
                    .parse()
                    .map_err(|_| RuleError::Invalid(format!("bad bytes {n:?}")))?
            }
            ("offset", Some(n)) => spec.offset = val_from(n, vars)?,
            ("oper", Some(o)) => {
                oper = Some(match o {
                    "+" => b'+',
                    "-" => b'-',
                    "*" => b'*',
                    "/" => b'/',
                    "<<" => b'<',
                    ">>" => b'>',
                    _ => return inv(format!("bad byte_math oper {o:?}")),
                })
            }
            ("rvalue", Some(n)) => rvalue = Some(val_from(n, vars)?),
            ("result", Some(n)) => name = Some(n.to_string()),
            ("relative", None) => spec.relative = true,
            ("endian", Some(e)) => spec.big_endian = e == "big",
            ("string", Some(b)) => {
                spec.string = Some(match b {
                    "hex" => NumBase::Hex,
                    "oct" => NumBase::Oct,
                    _ => NumBase::Dec,
                })
            }
            ("bitmask", Some(m)) => spec.bitmask = parse_int(m).map(|x| x as u64),
            ("dce", None) => return Err(RuleError::Unsupported("dce byte option".into())),
            _ => return inv(format!("bad byte_math option {p:?}")),
        }
    }
    check_nbytes(&spec)?;
    let oper = oper.ok_or_else(|| RuleError::Invalid("byte_math without oper".into()))?;
    let rvalue = rvalue.ok_or_else(|| RuleError::Invalid("byte_math without rvalue".into()))?;
    let name = name.ok_or_else(|| RuleError::Invalid("byte_math without result".into()))?;
    Ok((
        Match::ByteMath {
            spec,
            oper,
            rvalue,
            var,
        },
        name,
    ))
}

/// Choose the prefilter pattern: an explicit `fast_pattern`, else the longest positive content
/// (Suricata prefers app buffers over packet payload when lengths tie).
fn choose_fast_pattern(r: &mut Rule) {
    let mut best: Option<(usize, usize, usize)> = None;
    for (gi, g) in r.groups.iter().enumerate() {
        // The prefilter scans untransformed buffers case-insensitively: only transforms that keep
        // a pattern's occurrence (modulo case and a leading dot) allow a fast pattern.
        if !g.transforms.iter().all(|t| {
            matches!(
                t,
                Transform::DotPrefix | Transform::ToLower | Transform::ToUpper
            )
        }) {
            continue;
        }
        for (mi, m) in g.matches.iter().enumerate() {
            if let Match::Content(c) = m {
                if c.negated {
                    continue;
                }
                if c.fast_pattern {
                    r.fast = Some((gi, mi));
                    return;
                }
                let score = c.pat.len() * 2 + usize::from(g.buf != Buf::Pkt);
                if best.map(|b| score > b.2).unwrap_or(true) {
                    best = Some((gi, mi, score));
                }
            }
        }
    }
    r.fast = best.map(|(g, m, _)| (g, m));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Option<Rule>, (Option<u32>, RuleError)> {
        let vars = Vars::default();
        let classes = default_classes();
        let mut names = Names::default();
        let mut ctx = ParseCtx {
            vars: &vars,
            classes: &classes,
            names: &mut names,
        };
        parse_rule(s, &mut ctx)
    }

    #[test]
    fn sticky_buffers_and_legacy_modifiers_bind_contents() {
        let r = parse(r#"alert http any any -> any any (msg:"x"; flow:established,to_server; http.method; content:"POST"; content:"/a.php"; http_uri; sid:5; rev:2;)"#).unwrap().unwrap();
        assert_eq!(r.sid, 5);
        assert_eq!(r.rev, 2);
        assert_eq!(r.dir, Some(true));
        let bufs: Vec<Buf> = r.groups.iter().map(|g| g.buf).collect();
        assert_eq!(bufs, vec![Buf::HttpMethod, Buf::HttpUri]);
    }

    #[test]
    fn hex_content_and_escapes_decode() {
        assert_eq!(
            parse_content_bytes("a|41 42|\\;b").unwrap(),
            b"aAB;b".to_vec()
        );
        assert!(parse_content_bytes("|4").is_err());
    }

    #[test]
    fn unsupported_keyword_is_named() {
        let e =
            parse(r#"alert tcp any any -> any any (msg:"x"; asn1:oversize_length 100; sid:9;)"#)
                .unwrap_err();
        assert_eq!(e, (Some(9), RuleError::Unsupported("asn1".into())));
    }

    #[test]
    fn flowint_parses_modifications_and_tests() {
        let r = parse(r#"alert tcp any any -> any any (msg:"x"; flowint:cnt,+,1; flowint:cnt,>=,3; flowint:other,notset; sid:9;)"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.flowint.len(), 3);
        assert!(r.flowint[0].modifies());
        assert_eq!(r.flowint[1].op, FlowintCmd::Cmp(IntCmp::Ge));
        assert_eq!(r.flowint[2].op, FlowintCmd::NotSet);
        assert!(
            parse(r#"alert tcp any any -> any any (msg:"x"; flowint:cnt,~,1; sid:9;)"#).is_err()
        );
    }

    #[test]
    fn xbits_parse_track_and_expire() {
        let r = parse(r#"alert tcp any any -> any any (msg:"x"; xbits:set,ET.a,track ip_pair,expire 15; sid:9;)"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.xbits.len(), 1);
        assert_eq!(r.xbits[0].track, XTrack::Pair);
        assert_eq!(r.xbits[0].expire, Some(15));
        assert_eq!(r.xbits[0].cmd, FlowbitCmd::Set);
        let e =
            parse(r#"alert tcp any any -> any any (msg:"x"; xbits:isset,a; sid:9;)"#).unwrap_err();
        assert!(
            matches!(e.1, RuleError::Invalid(ref m) if m.contains("track")),
            "{e:?}"
        );
    }

    #[test]
    fn pcre_modifier_flag_selects_buffer() {
        let r = parse(r#"alert tcp any any -> any any (msg:"x"; pcre:"/a\;b/Ui"; sid:1;)"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.groups[0].buf, Buf::HttpUri);
        assert_eq!(r.app, Some(AppProto::Http));
    }

    proptest! {
        #[test]
        fn rule_parser_never_panics(s in ".{0,200}") {
            let _ = parse(&s);
            let _ = parse(&format!("alert tcp any any -> any any ({s})"));
        }
    }
}
