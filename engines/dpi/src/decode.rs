//! Link, network and transport decoding of one captured frame.
//!
//! Every length is checked against the bytes actually present: a truncated or lying header yields
//! `None` (counted by the caller as a decode error), never a panic or an out-of-bounds slice.

use std::net::IpAddr;

/// Link-layer types (pcap LINKTYPE_* values) the decoder understands.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const RAW_ALT12: u32 = 12;
    pub const RAW_ALT14: u32 = 14;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    pub const PPP: u32 = 9;
    pub const C_HDLC: u32 = 104;
}

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// An IP packet located inside a frame (still possibly a fragment).
#[derive(Debug, Clone)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// The upper-layer protocol after IPv6 extension headers.
    pub proto: u8,
    /// Bytes of the IP header (including IPv6 extension headers), for `ipv4.hdr`/`ipv6.hdr`.
    pub header: &'a [u8],
    /// The upper-layer bytes (after the IP header and options), trimmed to the IP total length.
    pub payload: &'a [u8],
    pub frag: Option<FragInfo>,
    pub ipv4_options: &'a [u8],
    pub checksum_ok: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct FragInfo {
    pub id: u32,
    /// Byte offset of this fragment's payload in the original datagram.
    pub offset: u32,
    pub more: bool,
}

/// Locate the IP packet in a frame of the given link type.
pub fn decode_link(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    match linktype {
        linktype::ETHERNET => {
            if frame.len() < 14 {
                return None;
            }
            ether_payload(u16::from_be_bytes([frame[12], frame[13]]), &frame[14..])
        }
        linktype::RAW
        | linktype::RAW_ALT12
        | linktype::RAW_ALT14
        | linktype::IPV4
        | linktype::IPV6 => Some(frame),
        linktype::NULL | linktype::LOOP => frame.get(4..),
        linktype::LINUX_SLL => {
            if frame.len() < 16 {
                return None;
            }
            ether_payload(u16::from_be_bytes([frame[14], frame[15]]), &frame[16..])
        }
        linktype::LINUX_SLL2 => {
            if frame.len() < 20 {
                return None;
            }
            ether_payload(u16::from_be_bytes([frame[0], frame[1]]), &frame[20..])
        }
        linktype::C_HDLC => {
            // Cisco HDLC: address, control, then an Ethernet type.
            if frame.len() < 4 {
                return None;
            }
            ether_payload(u16::from_be_bytes([frame[2], frame[3]]), &frame[4..])
        }
        linktype::PPP => {
            if frame.len() < 4 {
                return None;
            }
            // With or without the HDLC address/control bytes, and with the protocol field
            // compressed to one byte (an odd first byte, RFC 1661 section 6.5).
            let f = if frame[0] == 0xff && frame[1] == 0x03 {
                &frame[2..]
            } else {
                frame
            };
            let (proto, rest) = if f.first()? & 1 == 1 {
                (u16::from(f[0]), &f[1..])
            } else {
                (u16::from_be_bytes([f[0], *f.get(1)?]), f.get(2..)?)
            };
            match proto {
                0x0021 | 0x0057 => Some(rest),
                _ => None,
            }
        }
        _ => None,
    }
}

fn ether_payload(mut ethertype: u16, mut rest: &[u8]) -> Option<&[u8]> {
    // VLAN and QinQ tags may stack; bound the loop so a frame of tags cannot spin long.
    for _ in 0..4 {
        match ethertype {
            0x0800 | 0x86dd => return Some(rest),
            0x8100 | 0x88a8 | 0x9100 => {
                if rest.len() < 4 {
                    return None;
                }
                ethertype = u16::from_be_bytes([rest[2], rest[3]]);
                rest = &rest[4..];
            }
            0x8864 => {
                // PPPoE session: 6 byte header, then PPP protocol.
                if rest.len() < 8 {
                    return None;
                }
                let p = u16::from_be_bytes([rest[6], rest[7]]);
                return match p {
                    0x0021 | 0x0057 => Some(&rest[8..]),
                    _ => None,
                };
            }
            0x894f => {
                // Network Service Header (RFC 8300): length in 4-byte words, then the next protocol.
                if rest.len() < 8 {
                    return None;
                }
                let len = usize::from(rest[1] & 0x3f) * 4;
                let next = rest[3];
                let inner = rest.get(len.max(8)..)?;
                match next {
                    1 | 2 => return Some(inner),
                    3 => {
                        if inner.len() < 14 {
                            return None;
                        }
                        ethertype = u16::from_be_bytes([inner[12], inner[13]]);
                        rest = &inner[14..];
                    }
                    _ => return None,
                }
            }
            0x8847 => {
                // MPLS unicast: pop labels until bottom of stack, then guess IP version.
                let mut r = rest;
                loop {
                    if r.len() < 4 {
                        return None;
                    }
                    let bos = r[2] & 1 == 1;
                    r = &r[4..];
                    if bos {
                        break;
                    }
                }
                return Some(r);
            }
            _ => return None,
        }
    }
    None
}

fn ipv4_checksum_ok(hdr: &[u8]) -> bool {
    let mut sum: u32 = 0;
    for c in hdr.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// Decode an IPv4 or IPv6 header.
pub fn decode_ip(data: &[u8]) -> Option<IpPacket<'_>> {
    let v = data.first()? >> 4;
    match v {
        4 => {
            if data.len() < 20 {
                return None;
            }
            let ihl = ((data[0] & 0x0f) as usize) * 4;
            let total = u16::from_be_bytes([data[2], data[3]]) as usize;
            if ihl < 20 || data.len() < ihl || total < ihl {
                return None;
            }
            // Trim Ethernet padding; tolerate a capture shorter than the claimed length.
            let end = total.min(data.len());
            let flags_off = u16::from_be_bytes([data[6], data[7]]);
            let more = flags_off & 0x2000 != 0;
            let offset = ((flags_off & 0x1fff) as u32) * 8;
            let frag = if more || offset != 0 {
                Some(FragInfo {
                    id: u16::from_be_bytes([data[4], data[5]]) as u32,
                    offset,
                    more,
                })
            } else {
                None
            };
            Some(IpPacket {
                src: IpAddr::from([data[12], data[13], data[14], data[15]]),
                dst: IpAddr::from([data[16], data[17], data[18], data[19]]),
                ttl: data[8],
                proto: data[9],
                header: &data[..ihl],
                payload: &data[ihl..end],
                frag,
                ipv4_options: &data[20..ihl],
                checksum_ok: ipv4_checksum_ok(&data[..ihl]),
            })
        }
        6 => {
            if data.len() < 40 {
                return None;
            }
            let plen = u16::from_be_bytes([data[4], data[5]]) as usize;
            let end = (40 + plen).min(data.len());
            let mut src = [0u8; 16];
            src.copy_from_slice(&data[8..24]);
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&data[24..40]);
            let mut next = data[6];
            let mut off = 40usize;
            let mut frag = None;
            // Walk extension headers; a bounded count stops a chain crafted to loop long.
            for _ in 0..16 {
                match next {
                    0 | 43 | 60 | 135 | 139 | 140 => {
                        if off + 8 > end {
                            return None;
                        }
                        let len = (data[off + 1] as usize + 1) * 8;
                        next = data[off];
                        off += len;
                    }
                    51 => {
                        if off + 8 > end {
                            return None;
                        }
                        let len = (data[off + 1] as usize + 2) * 4;
                        next = data[off];
                        off += len;
                    }
                    44 => {
                        if off + 8 > end {
                            return None;
                        }
                        let fo = u16::from_be_bytes([data[off + 2], data[off + 3]]);
                        let id = u32::from_be_bytes([
                            data[off + 4],
                            data[off + 5],
                            data[off + 6],
                            data[off + 7],
                        ]);
                        let offset = ((fo >> 3) as u32) * 8;
                        let more = fo & 1 == 1;
                        if more || offset != 0 {
                            frag = Some(FragInfo { id, offset, more });
                        }
                        next = data[off];
                        off += 8;
                    }
                    _ => break,
                }
            }
            if off > end {
                return None;
            }
            Some(IpPacket {
                src: IpAddr::from(src),
                dst: IpAddr::from(dst),
                ttl: data[7],
                proto: next,
                header: &data[..off],
                payload: &data[off..end],
                frag,
                ipv4_options: &[],
                checksum_ok: true,
            })
        }
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct TcpHdr<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub header: &'a [u8],
    pub mss: Option<u16>,
}

pub mod tcpflag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

pub fn decode_tcp(data: &[u8]) -> Option<(TcpHdr<'_>, &[u8])> {
    if data.len() < 20 {
        return None;
    }
    let doff = ((data[12] >> 4) as usize) * 4;
    if doff < 20 || doff > data.len() {
        return None;
    }
    let mut mss = None;
    let mut o = 20;
    while o < doff {
        match data[o] {
            0 => break,
            1 => o += 1,
            kind => {
                if o + 1 >= doff {
                    break;
                }
                let l = data[o + 1] as usize;
                if l < 2 || o + l > doff {
                    break;
                }
                if kind == 2 && l == 4 {
                    mss = Some(u16::from_be_bytes([data[o + 2], data[o + 3]]));
                }
                o += l;
            }
        }
    }
    Some((
        TcpHdr {
            sport: u16::from_be_bytes([data[0], data[1]]),
            dport: u16::from_be_bytes([data[2], data[3]]),
            seq: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ack: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            flags: data[13],
            window: u16::from_be_bytes([data[14], data[15]]),
            header: &data[..doff],
            mss,
        },
        &data[doff..],
    ))
}

pub fn decode_udp(data: &[u8]) -> Option<(u16, u16, &[u8], &[u8])> {
    if data.len() < 8 {
        return None;
    }
    let len = u16::from_be_bytes([data[4], data[5]]) as usize;
    let end = if len >= 8 && len <= data.len() {
        len
    } else {
        data.len()
    };
    Some((
        u16::from_be_bytes([data[0], data[1]]),
        u16::from_be_bytes([data[2], data[3]]),
        &data[..8],
        &data[8..end],
    ))
}

/// Transport checksum (TCP/UDP/ICMPv6) over the pseudo header; `seg` is the whole segment.
pub fn l4_checksum_ok(src: &IpAddr, dst: &IpAddr, proto: u8, seg: &[u8]) -> bool {
    let mut sum: u64 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += w as u64;
        }
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        _ => return false,
    }
    add(&[0, proto]);
    add(&(seg.len() as u32).to_be_bytes()[2..]);
    add(seg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ipv4_header_with_bad_ihl_is_rejected() {
        let mut p = vec![0u8; 40];
        p[0] = 0x4f; // ihl 60 > len
        p[3] = 40;
        assert!(decode_ip(&p).is_none());
    }

    #[test]
    fn vlan_tagged_ethernet_reaches_ip() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0, 1, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        let ip = decode_link(linktype::ETHERNET, &f).unwrap();
        assert_eq!(ip[0], 0x45);
    }

    proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200), lt in 0u32..300) {
            if let Some(ip) = decode_link(lt, &data) {
                if let Some(p) = decode_ip(ip) {
                    let _ = decode_tcp(p.payload);
                    let _ = decode_udp(p.payload);
                }
            }
            let _ = decode_ip(&data);
            let _ = decode_tcp(&data);
        }
    }
}
