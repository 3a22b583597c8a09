//! Reading pcap and pcapng capture files (via the `pcap-file` crate) into frames for the DPI engine.

use anyhow::{bail, Context, Result};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// One frame: timestamp (seconds, microseconds), pcap link type, captured bytes.
pub struct Frame<'a> {
    pub secs: u64,
    pub micros: u32,
    pub linktype: u32,
    pub data: &'a [u8],
}

/// Call `f` for every frame of a pcap or pcapng file, in file order. A corrupt record ends the
/// file with an error naming the file and the record number (frames before it were delivered).
pub fn for_each_frame(path: &Path, mut f: impl FnMut(Frame<'_>)) -> Result<u64> {
    let mut file =
        File::open(path).with_context(|| format!("cannot open capture file {}", path.display()))?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .with_context(|| format!("{}: too short to be a capture file", path.display()))?;
    drop(file);
    let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut n = 0u64;
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut r = PcapNgReader::new(reader)
            .with_context(|| format!("{}: bad pcapng section header", path.display()))?;
        let mut links: Vec<u32> = Vec::new();
        while let Some(b) = r.next_block() {
            let b = b.with_context(|| {
                format!("{}: corrupt pcapng block after frame {n}", path.display())
            })?;
            match b {
                Block::InterfaceDescription(i) => links.push(u32::from(i.linktype)),
                Block::EnhancedPacket(p) => {
                    n += 1;
                    let lt = links.get(p.interface_id as usize).copied().unwrap_or(1);
                    f(Frame {
                        secs: p.timestamp.as_secs(),
                        micros: p.timestamp.subsec_micros(),
                        linktype: lt,
                        data: &p.data,
                    });
                }
                Block::SimplePacket(p) => {
                    n += 1;
                    let lt = links.first().copied().unwrap_or(1);
                    f(Frame {
                        secs: 0,
                        micros: 0,
                        linktype: lt,
                        data: &p.data,
                    });
                }
                Block::Packet(p) => {
                    n += 1;
                    let lt = links.get(p.interface_id as usize).copied().unwrap_or(1);
                    f(Frame {
                        secs: p.timestamp / 1_000_000,
                        micros: (p.timestamp % 1_000_000) as u32,
                        linktype: lt,
                        data: &p.data,
                    });
                }
                _ => {}
            }
        }
    } else if matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
    ) {
        let mut r = PcapReader::new(reader)
            .with_context(|| format!("{}: bad pcap header", path.display()))?;
        let lt = u32::from(r.header().datalink);
        while let Some(p) = r.next_packet() {
            let p = p.with_context(|| {
                format!("{}: corrupt pcap record after frame {n}", path.display())
            })?;
            n += 1;
            f(Frame {
                secs: p.timestamp.as_secs(),
                micros: p.timestamp.subsec_micros(),
                linktype: lt,
                data: &p.data,
            });
        }
    } else {
        bail!(
            "{}: not a pcap or pcapng file (magic {:02x?})",
            path.display(),
            magic
        );
    }
    Ok(n)
}
