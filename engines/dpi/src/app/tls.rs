//! TLS handshake parsing: ClientHello (SNI, JA3, JA4), ServerHello (JA3S), Certificate
//! (subject, issuer, serial). Records are reassembled up to a bound; nothing else is decrypted.

use md5::Digest as _;

const MAX_RECORD_BUF: usize = 128 * 1024;

#[derive(Debug, Default)]
pub struct TlsState {
    pub sni: Option<Vec<u8>>,
    pub ja3: Option<Vec<u8>>,
    pub ja3_hash: Option<Vec<u8>>,
    pub ja3s_hash: Option<Vec<u8>>,
    pub ja4: Option<Vec<u8>>,
    pub version: Option<u16>,
    pub certs: Vec<Vec<u8>>,
    pub cert_subject: Option<Vec<u8>>,
    pub cert_issuer: Option<Vec<u8>>,
    pub cert_serial: Option<Vec<u8>>,
    bufs: [Vec<u8>; 2],
    hs: [Vec<u8>; 2],
    done: [bool; 2],
    /// ChangeCipherSpec or application data seen, per direction.
    enc: [bool; 2],
}

/// What a chunk of data produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct TlsEvents {
    pub client_hello: bool,
    pub server_hello: bool,
    pub certificate: bool,
}

fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

impl TlsState {
    /// Both directions switched to encrypted records: the payload from here on is ciphertext.
    pub fn encrypted(&self) -> bool {
        self.enc[0] && self.enc[1]
    }

    pub fn feed(&mut self, to_server: bool, data: &[u8]) -> TlsEvents {
        let d = usize::from(!to_server);
        let mut ev = TlsEvents::default();
        if self.done[d] {
            return ev;
        }
        self.bufs[d].extend_from_slice(data);
        loop {
            let b = &self.bufs[d];
            if b.len() < 5 {
                break;
            }
            let ctype = b[0];
            let len = u16::from_be_bytes([b[3], b[4]]) as usize;
            if b[1] != 3 || len > 18432 {
                self.done[d] = true;
                self.bufs[d].clear();
                break;
            }
            if b.len() < 5 + len {
                if b.len() > MAX_RECORD_BUF {
                    self.done[d] = true;
                    self.bufs[d].clear();
                }
                break;
            }
            let rec: Vec<u8> = self.bufs[d][5..5 + len].to_vec();
            self.bufs[d].drain(..5 + len);
            match ctype {
                22 => {
                    self.hs[d].extend_from_slice(&rec);
                    self.handshake(d, &mut ev);
                }
                20 | 23 => {
                    // ChangeCipherSpec / application data: the rest is encrypted.
                    self.done[d] = true;
                    self.enc[d] = true;
                    self.bufs[d].clear();
                    break;
                }
                _ => {}
            }
        }
        ev
    }

    fn handshake(&mut self, d: usize, ev: &mut TlsEvents) {
        loop {
            let h = &self.hs[d];
            if h.len() < 4 {
                return;
            }
            let t = h[0];
            let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            if h.len() < 4 + len {
                if h.len() > MAX_RECORD_BUF {
                    self.hs[d].clear();
                    self.done[d] = true;
                }
                return;
            }
            let body: Vec<u8> = h[4..4 + len].to_vec();
            self.hs[d].drain(..4 + len);
            match t {
                1 if d == 0 => {
                    if self.client_hello(&body).is_some() {
                        ev.client_hello = true;
                    }
                }
                2 if d == 1 => {
                    if self.server_hello(&body).is_some() {
                        ev.server_hello = true;
                    }
                }
                11 if d == 1 => {
                    if self.certificate(&body).is_some() {
                        ev.certificate = true;
                    }
                }
                _ => {}
            }
        }
    }

    fn client_hello(&mut self, b: &[u8]) -> Option<()> {
        let mut r = Reader(b);
        let ver = r.u16()?;
        r.skip(32)?;
        let sid = r.u8()? as usize;
        r.skip(sid)?;
        let cl = r.u16()? as usize;
        let ciphers_b = r.take(cl)?;
        let ciphers: Vec<u16> = ciphers_b
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let comp = r.u8()? as usize;
        r.skip(comp)?;
        let mut exts = Vec::new();
        let mut curves = Vec::new();
        let mut pf = Vec::new();
        let mut sigalgs = Vec::new();
        let mut alpn: Option<Vec<u8>> = None;
        let mut supported: Vec<u16> = Vec::new();
        if let Some(el) = r.u16() {
            let mut er = Reader(r.take(el as usize).unwrap_or(&[]));
            while let (Some(t), Some(l)) = (er.u16(), er.u16()) {
                let Some(data) = er.take(l as usize) else {
                    break;
                };
                exts.push(t);
                let mut dr = Reader(data);
                match t {
                    0 => {
                        // server_name list: type(1) len(2) name
                        dr.u16();
                        if dr.u8() == Some(0) {
                            if let Some(nl) = dr.u16() {
                                if let Some(n) = dr.take(nl as usize) {
                                    self.sni = Some(n.to_vec());
                                }
                            }
                        }
                    }
                    10 => {
                        if let Some(l) = dr.u16() {
                            if let Some(x) = dr.take(l as usize) {
                                curves = x
                                    .chunks_exact(2)
                                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                                    .collect();
                            }
                        }
                    }
                    11 => {
                        if let Some(l) = dr.u8() {
                            if let Some(x) = dr.take(l as usize) {
                                pf = x.iter().map(|&c| c as u16).collect();
                            }
                        }
                    }
                    13 => {
                        if let Some(l) = dr.u16() {
                            if let Some(x) = dr.take(l as usize) {
                                sigalgs = x
                                    .chunks_exact(2)
                                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                                    .collect();
                            }
                        }
                    }
                    16 => {
                        dr.u16();
                        if let Some(l) = dr.u8() {
                            alpn = dr.take(l as usize).map(|x| x.to_vec());
                        }
                    }
                    43 => {
                        if let Some(l) = dr.u8() {
                            if let Some(x) = dr.take(l as usize) {
                                supported = x
                                    .chunks_exact(2)
                                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                                    .collect();
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let join = |v: &[u16]| {
            v.iter()
                .filter(|x| !is_grease(**x))
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("-")
        };
        let ja3 = format!(
            "{},{},{},{},{}",
            ver,
            join(&ciphers),
            join(&exts),
            join(&curves),
            join(&pf)
        );
        self.ja3_hash = Some(hex(&md5::Md5::digest(ja3.as_bytes())).into_bytes());
        self.ja3 = Some(ja3.into_bytes());
        self.version = Some(ver);

        // JA4 (TLS over TCP).
        let best = supported
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(ver);
        let vs = match best {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            _ => "00",
        };
        let c: Vec<u16> = ciphers.iter().copied().filter(|x| !is_grease(*x)).collect();
        let e: Vec<u16> = exts.iter().copied().filter(|x| !is_grease(*x)).collect();
        let a = match &alpn {
            Some(p) if !p.is_empty() => {
                let f = p[0] as char;
                let l = p[p.len() - 1] as char;
                if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                    format!("{f}{l}")
                } else {
                    let h = hex(p);
                    format!("{}{}", &h[..1], &h[h.len() - 1..])
                }
            }
            _ => "00".into(),
        };
        let mut cs: Vec<String> = c.iter().map(|x| format!("{x:04x}")).collect();
        cs.sort();
        let mut es: Vec<String> = e
            .iter()
            .filter(|&&x| x != 0 && x != 16)
            .map(|x| format!("{x:04x}"))
            .collect();
        es.sort();
        let sa: Vec<String> = sigalgs.iter().map(|x| format!("{x:04x}")).collect();
        let h12 = |s: &str| {
            if s.is_empty() {
                "000000000000".to_string()
            } else {
                hex(&sha2::Sha256::digest(s.as_bytes()))[..12].to_string()
            }
        };
        let ext_s = if sa.is_empty() {
            es.join(",")
        } else {
            format!("{}_{}", es.join(","), sa.join(","))
        };
        let ja4 = format!(
            "t{}{}{:02}{:02}{}_{}_{}",
            vs,
            if self.sni.is_some() { 'd' } else { 'i' },
            c.len().min(99),
            e.len().min(99),
            a,
            h12(&cs.join(",")),
            h12(&ext_s)
        );
        self.ja4 = Some(ja4.into_bytes());
        Some(())
    }

    fn server_hello(&mut self, b: &[u8]) -> Option<()> {
        let mut r = Reader(b);
        let ver = r.u16()?;
        r.skip(32)?;
        let sid = r.u8()? as usize;
        r.skip(sid)?;
        let cipher = r.u16()?;
        r.u8()?;
        let mut exts = Vec::new();
        if let Some(el) = r.u16() {
            let mut er = Reader(r.take(el as usize).unwrap_or(&[]));
            while let (Some(t), Some(l)) = (er.u16(), er.u16()) {
                if er.take(l as usize).is_none() {
                    break;
                }
                exts.push(t);
            }
        }
        let e = exts
            .iter()
            .filter(|x| !is_grease(**x))
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("-");
        let s = format!("{ver},{cipher},{e}");
        self.ja3s_hash = Some(hex(&md5::Md5::digest(s.as_bytes())).into_bytes());
        Some(())
    }

    fn certificate(&mut self, b: &[u8]) -> Option<()> {
        let mut r = Reader(b);
        let total = r.u24()? as usize;
        let mut cr = Reader(r.take(total.min(r.0.len()))?);
        while let Some(l) = cr.u24() {
            let Some(c) = cr.take(l as usize) else { break };
            if self.certs.len() < 16 {
                self.certs.push(c.to_vec());
            }
        }
        if let Some(first) = self.certs.first() {
            if let Some((subj, iss, serial)) = parse_cert(first) {
                self.cert_subject = Some(subj.into_bytes());
                self.cert_issuer = Some(iss.into_bytes());
                self.cert_serial = Some(serial.into_bytes());
            }
        }
        Some(())
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<u32> {
        self.take(3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
}

/// Read one DER TLV: (tag, content, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    if b.len() < 2 {
        return None;
    }
    let tag = b[0];
    let l0 = b[1] as usize;
    let (len, hl) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 || b.len() < 2 + n {
            return None;
        }
        let mut l = 0usize;
        for &x in &b[2..2 + n] {
            l = l << 8 | x as usize;
        }
        (l, 2 + n)
    };
    if b.len() < hl + len {
        return None;
    }
    Some((tag, &b[hl..hl + len], &b[hl + len..]))
}

fn oid_name(o: &[u8]) -> String {
    match o {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        _ => {
            let mut s = String::new();
            if let Some(&f) = o.first() {
                s = format!("{}.{}", f / 40, f % 40);
                let mut v: u64 = 0;
                for &x in &o[1..] {
                    v = v << 7 | (x & 0x7f) as u64;
                    if x & 0x80 == 0 {
                        s.push_str(&format!(".{v}"));
                        v = 0;
                    }
                }
            }
            s
        }
    }
}

fn name_string(b: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rest = b;
    while let Some((_, set, r)) = der(rest) {
        rest = r;
        let mut s = set;
        while let Some((_, atv, r2)) = der(s) {
            s = r2;
            if let Some((_, oid, after)) = der(atv) {
                if let Some((_, val, _)) = der(after) {
                    parts.push(format!(
                        "{}={}",
                        oid_name(oid),
                        String::from_utf8_lossy(val)
                    ));
                }
            }
        }
    }
    parts.join(", ")
}

/// Subject, issuer and serial (as `AA:BB:..`) of a DER certificate.
pub fn parse_cert(c: &[u8]) -> Option<(String, String, String)> {
    let (_, cert, _) = der(c)?;
    let (_, tbs, _) = der(cert)?;
    let mut r = tbs;
    let (t, _, rest) = der(r)?;
    if t == 0xa0 {
        r = rest;
    }
    let (_, serial, rest) = der(r)?;
    let (_, _alg, rest) = der(rest)?;
    let (_, issuer, rest) = der(rest)?;
    let (_, _validity, rest) = der(rest)?;
    let (_, subject, _) = der(rest)?;
    let ser = serial
        .iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Some((name_string(subject), name_string(issuer), ser))
}

pub fn looks_like_tls(d: &[u8]) -> bool {
    d.len() >= 3 && d[0] == 0x16 && d[1] == 3 && d[2] <= 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_hello_gives_sni_and_ja3() {
        // Minimal ClientHello with only an SNI extension for "a.b".
        let sni_ext: Vec<u8> = vec![0, 0, 0, 8, 0, 6, 0, 0, 3, b'a', b'.', b'b'];
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&sni_ext);
        let mut hs = vec![1, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1, 0, hs.len() as u8];
        rec.extend_from_slice(&hs);
        let mut t = TlsState::default();
        let ev = t.feed(true, &rec);
        assert!(ev.client_hello);
        assert_eq!(t.sni.as_deref(), Some(&b"a.b"[..]));
        assert_eq!(t.ja3.as_deref(), Some(&b"771,4865,0,,"[..]));
    }

    proptest! {
        #[test]
        fn tls_parser_never_panics(a in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut t = TlsState::default();
            let mut rec = vec![22, 3, 1];
            rec.extend_from_slice(&a);
            t.feed(true, &rec);
            t.feed(false, &rec);
            let _ = parse_cert(&a);
        }
    }
}
