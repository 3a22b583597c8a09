//! A small classic-BPF compiler for the capture exclusions the agent needs ("not (host M and port
//! P)" for its own manager traffic, plus user exclusions such as `net 10.9.0.0/16` or `port 22`),
//! so the kernel drops those packets before they are copied to user space. `tcpdump -dd` is not
//! available on the hosts we run on, hence our own builder; it understands only these forms:
//!
//! ```text
//! EXCLUSION := PRIMITIVE ("and" PRIMITIVE)*
//! PRIMITIVE := "host" IP | "net" IP/LEN | "port" N | "src port" N | "dst port" N | "tcp" | "udp" | "icmp"
//! ```
//!
//! A packet is dropped when any exclusion matches it. Anything that is neither IPv4 nor IPv6
//! (ARP, VLAN-tagged frames...) is always kept: the filter must never hide traffic it does not
//! understand.

use std::net::{IpAddr, Ipv6Addr};

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// Bytes kept of an accepted packet (the whole frame).
const ACCEPT: u32 = 0x0004_0000;

/// How frames start on the socket the filter is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkLayer {
    /// 14-byte Ethernet header (Ethernet and loopback interfaces).
    Ethernet,
    /// The IP header first (tun devices, ARPHRD_NONE / RAWIP).
    RawIp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prim {
    Host(IpAddr),
    Net(IpAddr, u8),
    Port(u16, Dir),
    Proto(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Either,
    Src,
    Dst,
}

/// A parsed exclusion: all primitives must hold for a packet to be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion(Vec<Prim>);

impl Exclusion {
    /// Parse one exclusion such as `host 10.0.0.5 and port 1515`. The error names the word at fault.
    pub fn parse(text: &str) -> Result<Exclusion, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            return Err("empty exclusion".into());
        }
        let mut prims = Vec::new();
        let mut i = 0;
        loop {
            let w = words.get(i).copied().unwrap_or("");
            let arg = |j: usize| {
                words
                    .get(j)
                    .copied()
                    .ok_or_else(|| format!("`{w}` needs a value at the end of {text:?}"))
            };
            match w {
                "host" => {
                    let a = arg(i + 1)?;
                    let ip: IpAddr = a
                        .parse()
                        .map_err(|_| format!("`host {a}`: not an IP address in {text:?}"))?;
                    prims.push(Prim::Host(ip));
                    i += 2;
                }
                "net" => {
                    let a = arg(i + 1)?;
                    let (ip, len) = a
                        .split_once('/')
                        .ok_or_else(|| format!("`net {a}`: expected ADDRESS/LENGTH in {text:?}"))?;
                    let ip: IpAddr = ip
                        .parse()
                        .map_err(|_| format!("`net {a}`: not an IP address in {text:?}"))?;
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let len: u8 = len
                        .parse()
                        .ok()
                        .filter(|&l| l <= max)
                        .ok_or_else(|| format!("`net {a}`: prefix length must be 0-{max}"))?;
                    prims.push(Prim::Net(ip, len));
                    i += 2;
                }
                "port" | "src" | "dst" => {
                    let (dir, j) = match w {
                        "port" => (Dir::Either, i + 1),
                        d => {
                            if arg(i + 1)? != "port" {
                                return Err(format!("`{d}` must be followed by `port` in {text:?}"));
                            }
                            (if d == "src" { Dir::Src } else { Dir::Dst }, i + 2)
                        }
                    };
                    let a = arg(j)?;
                    let p: u16 = a
                        .parse()
                        .map_err(|_| format!("`port {a}`: not a port number in {text:?}"))?;
                    prims.push(Prim::Port(p, dir));
                    i = j + 1;
                }
                "tcp" => {
                    prims.push(Prim::Proto(6));
                    i += 1;
                }
                "udp" => {
                    prims.push(Prim::Proto(17));
                    i += 1;
                }
                "icmp" => {
                    prims.push(Prim::Proto(1));
                    i += 1;
                }
                other => {
                    return Err(format!(
                        "unknown word `{other}` in exclusion {text:?} (expected host, net, port, src port, dst port, tcp, udp, icmp)"
                    ))
                }
            }
            match words.get(i) {
                None => break,
                Some(&"and") if i + 1 < words.len() => i += 1,
                Some(w) => return Err(format!("expected `and` before `{w}` in {text:?}")),
            }
        }
        Ok(Exclusion(prims))
    }

    /// The exclusion for the agent's own manager connection.
    pub fn manager(addr: std::net::SocketAddr) -> Exclusion {
        Exclusion(vec![
            Prim::Proto(6),
            Prim::Host(addr.ip()),
            Prim::Port(addr.port(), Dir::Either),
        ])
    }
}

#[derive(Clone, Copy)]
enum Tgt {
    Next,
    Label(usize),
}

struct Asm {
    code: Vec<(u16, Tgt, Tgt, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, Tgt::Next, Tgt::Next, k));
    }
    fn jmp(&mut self, code: u16, k: u32, jt: Tgt, jf: Tgt) {
        self.code.push((code, jt, jf, k));
    }
    fn ja(&mut self, l: usize) {
        self.code.push((JMP_JA, Tgt::Label(l), Tgt::Next, 0));
    }
    fn finish(self) -> Result<Vec<SockFilter>, String> {
        let mut out = Vec::with_capacity(self.code.len());
        for (i, &(code, jt, jf, k)) in self.code.iter().enumerate() {
            let off = |t: Tgt| -> Result<u32, String> {
                match t {
                    Tgt::Next => Ok(0),
                    Tgt::Label(l) => {
                        let at = self.labels[l].ok_or("internal: unbound label")?;
                        at.checked_sub(i + 1)
                            .map(|o| o as u32)
                            .ok_or_else(|| "internal: backward jump".to_string())
                    }
                }
            };
            if code == JMP_JA {
                out.push(SockFilter {
                    code,
                    jt: 0,
                    jf: 0,
                    k: off(jt)?,
                });
            } else {
                let (t, f) = (off(jt)?, off(jf)?);
                if t > 255 || f > 255 {
                    return Err("too many exclusions: the capture filter grew past classic BPF's jump range".into());
                }
                out.push(SockFilter {
                    code,
                    jt: t as u8,
                    jf: f as u8,
                    k,
                });
            }
        }
        if out.len() > 4096 {
            return Err("too many exclusions: the capture filter exceeds 4096 instructions".into());
        }
        Ok(out)
    }
}

fn v6_words(a: &Ipv6Addr) -> [u32; 4] {
    let o = a.octets();
    std::array::from_fn(|i| {
        u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

fn v6_mask_words(len: u8) -> [u32; 4] {
    std::array::from_fn(|i| {
        let bits = (len as i32 - 32 * i as i32).clamp(0, 32) as u32;
        if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        }
    })
}

/// Emit the test of one primitive on an IPv4 packet whose IP header starts at `l3`: falls through
/// when it holds, jumps to `fail` when not.
fn emit_v4(a: &mut Asm, p: &Prim, l3: u32, fail: usize) {
    match p {
        Prim::Host(IpAddr::V4(ip)) | Prim::Net(IpAddr::V4(ip), _) => {
            let len = match p {
                Prim::Net(_, l) => *l,
                _ => 32,
            };
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let want = u32::from(*ip) & mask;
            let ok = a.label();
            for (n, off) in [12u32, 16].into_iter().enumerate() {
                a.op(LD_W_ABS, l3 + off);
                if mask != u32::MAX {
                    a.op(ALU_AND_K, mask);
                }
                let jf = if n == 0 { Tgt::Next } else { Tgt::Label(fail) };
                a.jmp(JMP_JEQ_K, want, Tgt::Label(ok), jf);
            }
            a.bind(ok);
        }
        Prim::Host(IpAddr::V6(_)) | Prim::Net(IpAddr::V6(_), _) => a.ja(fail),
        Prim::Proto(n) => {
            a.op(LD_B_ABS, l3 + 9);
            a.jmp(JMP_JEQ_K, u32::from(*n), Tgt::Next, Tgt::Label(fail));
        }
        Prim::Port(port, dir) => {
            let l4 = a.label();
            a.op(LD_B_ABS, l3 + 9);
            a.jmp(JMP_JEQ_K, 6, Tgt::Label(l4), Tgt::Next);
            a.jmp(JMP_JEQ_K, 17, Tgt::Label(l4), Tgt::Label(fail));
            a.bind(l4);
            // Non-first fragments carry no ports.
            a.op(LD_H_ABS, l3 + 6);
            a.jmp(JMP_JSET_K, 0x1fff, Tgt::Label(fail), Tgt::Next);
            a.op(LDX_B_MSH, l3);
            let offs: &[u32] = match dir {
                Dir::Either => &[0, 2],
                Dir::Src => &[0],
                Dir::Dst => &[2],
            };
            let ok = a.label();
            for (n, off) in offs.iter().enumerate() {
                a.op(LD_H_IND, l3 + off);
                let jf = if n + 1 < offs.len() {
                    Tgt::Next
                } else {
                    Tgt::Label(fail)
                };
                a.jmp(JMP_JEQ_K, u32::from(*port), Tgt::Label(ok), jf);
            }
            a.bind(ok);
        }
    }
}

/// The same for IPv6 (fixed header only: ports are read when TCP/UDP follows it directly).
fn emit_v6(a: &mut Asm, p: &Prim, l3: u32, fail: usize) {
    match p {
        Prim::Host(IpAddr::V6(ip)) | Prim::Net(IpAddr::V6(ip), _) => {
            let len = match p {
                Prim::Net(_, l) => *l,
                _ => 128,
            };
            let (w, m) = (v6_words(ip), v6_mask_words(len));
            let ok = a.label();
            for (n, base) in [8u32, 24].into_iter().enumerate() {
                let next = a.label();
                let miss = if n == 0 { next } else { fail };
                for i in 0..4 {
                    if m[i] == 0 {
                        continue;
                    }
                    a.op(LD_W_ABS, l3 + base + 4 * i as u32);
                    if m[i] != u32::MAX {
                        a.op(ALU_AND_K, m[i]);
                    }
                    a.jmp(JMP_JEQ_K, w[i] & m[i], Tgt::Next, Tgt::Label(miss));
                }
                a.ja(ok);
                a.bind(next);
            }
            a.bind(ok);
        }
        Prim::Host(IpAddr::V4(_)) | Prim::Net(IpAddr::V4(_), _) => a.ja(fail),
        Prim::Proto(n) => {
            let n = if *n == 1 { 58 } else { *n };
            a.op(LD_B_ABS, l3 + 6);
            a.jmp(JMP_JEQ_K, u32::from(n), Tgt::Next, Tgt::Label(fail));
        }
        Prim::Port(port, dir) => {
            let l4 = a.label();
            a.op(LD_B_ABS, l3 + 6);
            a.jmp(JMP_JEQ_K, 6, Tgt::Label(l4), Tgt::Next);
            a.jmp(JMP_JEQ_K, 17, Tgt::Label(l4), Tgt::Label(fail));
            a.bind(l4);
            let offs: &[u32] = match dir {
                Dir::Either => &[40, 42],
                Dir::Src => &[40],
                Dir::Dst => &[42],
            };
            let ok = a.label();
            for (n, off) in offs.iter().enumerate() {
                a.op(LD_H_ABS, l3 + off);
                let jf = if n + 1 < offs.len() {
                    Tgt::Next
                } else {
                    Tgt::Label(fail)
                };
                a.jmp(JMP_JEQ_K, u32::from(*port), Tgt::Label(ok), jf);
            }
            a.bind(ok);
        }
    }
}

/// Branch on the accumulator with long jumps (`ja`), since conditional jumps reach only 255 ahead.
fn dispatch(a: &mut Asm, k4: u32, k6: u32, v4: usize, v6: usize, other: usize) {
    let not4 = a.label();
    a.jmp(JMP_JEQ_K, k4, Tgt::Next, Tgt::Label(not4));
    a.ja(v4);
    a.bind(not4);
    let not6 = a.label();
    a.jmp(JMP_JEQ_K, k6, Tgt::Next, Tgt::Label(not6));
    a.ja(v6);
    a.bind(not6);
    a.ja(other);
}

/// Compile "drop when any exclusion matches, keep everything else" for the given link layer.
/// With no exclusions the program keeps every packet.
pub fn compile(excl: &[Exclusion], link: LinkLayer) -> Result<Vec<SockFilter>, String> {
    let mut a = Asm::new();
    let (accept, drop, v4, v6) = (a.label(), a.label(), a.label(), a.label());
    let l3 = match link {
        LinkLayer::Ethernet => {
            a.op(LD_H_ABS, 12);
            dispatch(&mut a, 0x0800, 0x86dd, v4, v6, accept);
            14
        }
        LinkLayer::RawIp => {
            a.op(LD_B_ABS, 0);
            a.op(ALU_AND_K, 0xf0);
            dispatch(&mut a, 0x40, 0x60, v4, v6, accept);
            0
        }
    };
    for (v6_branch, start) in [(false, v4), (true, v6)] {
        a.bind(start);
        for e in excl {
            let next = a.label();
            for p in &e.0 {
                if v6_branch {
                    emit_v6(&mut a, p, l3, next);
                } else {
                    emit_v4(&mut a, p, l3, next);
                }
            }
            a.ja(drop);
            a.bind(next);
        }
        a.ja(accept);
    }
    a.bind(accept);
    a.op(RET_K, ACCEPT);
    a.bind(drop);
    a.op(RET_K, 0);
    a.finish()
}

/// Run a classic BPF program over a packet as the kernel would (the subset of opcodes `compile`
/// emits); returns the number of bytes to keep, 0 = drop. Used to test programs without a socket.
pub fn run(prog: &[SockFilter], pkt: &[u8]) -> u32 {
    let (mut acc, mut x, mut pc) = (0u32, 0u32, 0usize);
    let ld = |off: u32, n: usize| -> Option<u32> {
        let s = pkt.get(off as usize..(off as usize).checked_add(n)?)?;
        Some(s.iter().fold(0u32, |v, &b| v << 8 | u32::from(b)))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        match i.code {
            LD_W_ABS | LD_H_ABS | LD_B_ABS => {
                let n = match i.code {
                    LD_W_ABS => 4,
                    LD_H_ABS => 2,
                    _ => 1,
                };
                match ld(i.k, n) {
                    Some(v) => acc = v,
                    None => return 0,
                }
            }
            LD_H_IND => match ld(x.wrapping_add(i.k), 2) {
                Some(v) => acc = v,
                None => return 0,
            },
            LDX_B_MSH => match ld(i.k, 1) {
                Some(v) => x = (v & 0xf) * 4,
                None => return 0,
            },
            ALU_AND_K => acc &= i.k,
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K | JMP_JSET_K => {
                let c = if i.code == JMP_JEQ_K {
                    acc == i.k
                } else {
                    acc & i.k != 0
                };
                pc += usize::from(if c { i.jt } else { i.jf });
            }
            RET_K => return i.k,
            _ => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_v4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![
            0x45,
            0,
            0,
            40,
            0,
            1,
            (frag >> 8) as u8,
            frag as u8,
            64,
            proto,
            0,
            0,
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0u8; 16]);
        f
    }

    fn eth_v6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x86;
        f[13] = 0xdd;
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, nh, 64]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0u8; 16]);
        f
    }

    const M: [u8; 4] = [10, 0, 0, 5];
    const ME: [u8; 4] = [10, 0, 0, 9];

    #[test]
    fn manager_traffic_is_dropped_in_both_directions_and_other_traffic_kept() {
        let prog = compile(
            &[Exclusion::manager("10.0.0.5:1515".parse().unwrap())],
            LinkLayer::Ethernet,
        )
        .unwrap();
        assert_eq!(run(&prog, &eth_v4(ME, M, 6, 40000, 1515, 0)), 0);
        assert_eq!(run(&prog, &eth_v4(M, ME, 6, 1515, 40000, 0)), 0);
        // Same host, other port; same port, other host; UDP to the manager port.
        assert_ne!(run(&prog, &eth_v4(ME, M, 6, 40000, 22, 0)), 0);
        assert_ne!(run(&prog, &eth_v4(ME, [10, 0, 0, 6], 6, 40000, 1515, 0)), 0);
        assert_ne!(run(&prog, &eth_v4(ME, M, 17, 40000, 1515, 0)), 0);
        // Non-first fragments have no ports: kept.
        assert_ne!(run(&prog, &eth_v4(ME, M, 6, 40000, 1515, 0x0010)), 0);
    }

    #[test]
    fn non_ip_frames_and_short_frames_are_never_hidden_by_accident() {
        let prog = compile(&[Exclusion::parse("port 53").unwrap()], LinkLayer::Ethernet).unwrap();
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_ne!(run(&prog, &arp), 0);
        // A truncated IPv4 frame: the kernel drops on an out-of-bounds load, so do we.
        let mut f = eth_v4(ME, M, 17, 53, 53, 0);
        f.truncate(20);
        assert_eq!(run(&prog, &f), 0);
    }

    #[test]
    fn net_src_port_and_protocol_primitives_match_as_tcpdump_does() {
        let prog = compile(
            &[
                Exclusion::parse("net 192.168.0.0/16").unwrap(),
                Exclusion::parse("udp and dst port 53").unwrap(),
            ],
            LinkLayer::Ethernet,
        )
        .unwrap();
        assert_eq!(run(&prog, &eth_v4([192, 168, 3, 4], ME, 6, 1, 2, 0)), 0);
        assert_eq!(run(&prog, &eth_v4(ME, [192, 168, 250, 1], 6, 1, 2, 0)), 0);
        assert_ne!(run(&prog, &eth_v4(ME, [192, 169, 0, 1], 6, 1, 2, 0)), 0);
        assert_eq!(run(&prog, &eth_v4(ME, M, 17, 5000, 53, 0)), 0);
        assert_ne!(run(&prog, &eth_v4(M, ME, 17, 53, 5000, 0)), 0);
        assert_ne!(run(&prog, &eth_v4(ME, M, 6, 5000, 53, 0)), 0);
    }

    #[test]
    fn ipv6_hosts_and_nets_are_compared_on_all_words() {
        let a: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db9::9".parse().unwrap();
        let prog = compile(
            &[Exclusion::parse("host 2001:db8::5 and port 443").unwrap()],
            LinkLayer::Ethernet,
        )
        .unwrap();
        assert_eq!(run(&prog, &eth_v6(a, b, 6, 443, 50000)), 0);
        assert_eq!(run(&prog, &eth_v6(b, a, 6, 50000, 443)), 0);
        assert_ne!(run(&prog, &eth_v6(b, c, 6, 50000, 443)), 0);
        assert_ne!(run(&prog, &eth_v6(a, b, 6, 80, 50000)), 0);
        let net = compile(
            &[Exclusion::parse("net 2001:db8::/32").unwrap()],
            LinkLayer::Ethernet,
        )
        .unwrap();
        assert_eq!(run(&net, &eth_v6(c, b, 17, 1, 2)), 0);
        assert_ne!(run(&net, &eth_v6(c, c, 17, 1, 2)), 0);
        // An IPv4 exclusion never matches IPv6 packets and vice versa.
        let v4only = compile(
            &[Exclusion::parse("host 10.0.0.5").unwrap()],
            LinkLayer::Ethernet,
        )
        .unwrap();
        assert_ne!(run(&v4only, &eth_v6(a, b, 6, 1, 2)), 0);
        assert_ne!(run(&net, &eth_v4(M, ME, 6, 1, 2, 0)), 0);
    }

    #[test]
    fn raw_ip_link_layer_reads_headers_at_offset_zero() {
        let prog = compile(
            &[Exclusion::parse("host 10.0.0.5").unwrap()],
            LinkLayer::RawIp,
        )
        .unwrap();
        let f = eth_v4(ME, M, 6, 1, 2, 0);
        assert_eq!(run(&prog, &f[14..]), 0);
        assert_ne!(run(&prog, &eth_v4(ME, ME, 6, 1, 2, 0)[14..]), 0);
    }

    #[test]
    fn no_exclusions_keeps_everything() {
        let prog = compile(&[], LinkLayer::Ethernet).unwrap();
        assert_ne!(run(&prog, &eth_v4(ME, M, 6, 1, 2, 0)), 0);
    }

    #[test]
    fn bad_exclusions_are_reported_with_the_word_at_fault() {
        for (t, want) in [
            ("host nothere", "not an IP"),
            ("port 99999", "not a port"),
            ("net 10.0.0.0/40", "prefix length"),
            ("net 10.0.0.0", "ADDRESS/LENGTH"),
            ("host 1.2.3.4 or port 5", "expected `and`"),
            ("vlan 4", "unknown word `vlan`"),
            ("port", "needs a value"),
            ("src 22", "followed by `port`"),
            ("", "empty"),
        ] {
            let e = Exclusion::parse(t).unwrap_err();
            assert!(e.contains(want), "{t:?}: {e}");
        }
    }

    #[test]
    fn many_exclusions_compile_or_fail_cleanly() {
        let ex: Vec<Exclusion> = (0..200)
            .map(|i| {
                Exclusion::parse(&format!(
                    "host 10.1.{}.{} and port {}",
                    i / 250,
                    i % 250,
                    1000 + i
                ))
                .unwrap()
            })
            .collect();
        match compile(&ex, LinkLayer::Ethernet) {
            Ok(p) => assert_eq!(run(&p, &eth_v4([10, 1, 0, 7], ME, 6, 1007, 9, 0)), 0),
            Err(e) => assert!(e.contains("too many exclusions"), "{e}"),
        }
        let few: Vec<Exclusion> = ex.into_iter().take(8).collect();
        let p = compile(&few, LinkLayer::Ethernet).unwrap();
        assert_eq!(run(&p, &eth_v4([10, 1, 0, 7], ME, 6, 1007, 9, 0)), 0);
        assert_ne!(run(&p, &eth_v4([10, 1, 0, 7], ME, 6, 1008, 9, 0)), 0);
    }
}
