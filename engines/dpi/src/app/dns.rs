//! DNS message parsing (queries; over UDP, and over TCP with its length prefix).
//! Name decompression follows pointers only backwards-bounded and a fixed number of times.

#[derive(Debug, Clone, Default)]
pub struct DnsMsg {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    /// Query names, dotted, without the trailing dot.
    pub queries: Vec<(Vec<u8>, u16)>,
}

fn read_name(msg: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut jumped = false;
    let mut end = 0;
    for _ in 0..128 {
        let l = *msg.get(pos)? as usize;
        if l == 0 {
            if !jumped {
                end = pos + 1;
            }
            return Some(end);
        }
        if l & 0xc0 == 0xc0 {
            let p = ((l & 0x3f) << 8) | *msg.get(pos + 1)? as usize;
            if !jumped {
                end = pos + 2;
            }
            jumped = true;
            if p >= msg.len() {
                return None;
            }
            pos = p;
            continue;
        }
        if l & 0xc0 != 0 {
            return None;
        }
        let label = msg.get(pos + 1..pos + 1 + l)?;
        if !out.is_empty() {
            out.push(b'.');
        }
        out.extend_from_slice(label);
        if out.len() > 1025 {
            return None;
        }
        pos += 1 + l;
    }
    None
}

pub fn parse(msg: &[u8]) -> Option<DnsMsg> {
    if msg.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let qd = u16::from_be_bytes([msg[4], msg[5]]) as usize;
    if flags & 0x7800 != 0 && flags & 0x7800 != 0x2800 {
        // opcodes other than query/update: still DNS, but nothing we inspect.
    }
    let mut m = DnsMsg {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0xf) as u8,
        queries: Vec::new(),
    };
    let mut pos = 12;
    for _ in 0..qd.min(64) {
        let mut name = Vec::new();
        pos = read_name(msg, pos, &mut name)?;
        let t = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
        pos += 4;
        if pos > msg.len() {
            return None;
        }
        m.queries.push((name, t));
    }
    Some(m)
}

/// Reassembles DNS over TCP: 2-byte length prefixed messages.
#[derive(Debug, Default)]
pub struct TcpDns {
    buf: [Vec<u8>; 2],
    failed: bool,
}

impl TcpDns {
    pub fn feed(&mut self, to_server: bool, data: &[u8], out: &mut Vec<DnsMsg>) {
        if self.failed {
            return;
        }
        let b = &mut self.buf[usize::from(!to_server)];
        b.extend_from_slice(data);
        loop {
            if b.len() < 2 {
                return;
            }
            let l = u16::from_be_bytes([b[0], b[1]]) as usize;
            if b.len() < 2 + l {
                return;
            }
            match parse(&b[2..2 + l]) {
                Some(m) => out.push(m),
                None => {
                    self.failed = true;
                    b.clear();
                    return;
                }
            }
            b.drain(..2 + l);
        }
    }
}

/// A plausibility check for content-based detection of DNS on a non-standard port.
pub fn looks_like_dns(d: &[u8]) -> bool {
    if d.len() < 17 {
        return false;
    }
    let qd = u16::from_be_bytes([d[4], d[5]]);
    let an = u16::from_be_bytes([d[6], d[7]]);
    let opcode = (d[2] >> 3) & 0xf;
    qd == 1 && an < 64 && opcode == 0 && parse(d).map(|m| !m.queries.is_empty()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_name_is_dotted() {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        let m = parse(&q).unwrap();
        assert_eq!(m.queries[0].0, b"www.example.com");
        assert!(!m.response);
    }

    #[test]
    fn compression_loop_is_rejected() {
        let mut q = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(parse(&q).is_none());
    }

    proptest! {
        #[test]
        fn dns_parser_never_panics(a in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&a);
            let mut t = TcpDns::default();
            let mut out = Vec::new();
            t.feed(true, &a, &mut out);
        }
    }
}
