//! Address and port expressions of a rule header (`[$HOME_NET,!10.0.0.0/8]`, `[80,8000:8100]`).

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                if self.prefix == 0 {
                    return true;
                }
                let m = u32::MAX << (32 - self.prefix.min(32) as u32);
                (u32::from(a) & m) == (u32::from(*b) & m)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                if self.prefix == 0 {
                    return true;
                }
                let m = u128::MAX << (128 - self.prefix.min(128) as u32);
                (u128::from(a) & m) == (u128::from(*b) & m)
            }
            _ => false,
        }
    }
}

/// A set of addresses: matches when some include matches (or there are none) and no exclude does.
#[derive(Debug, Clone, Default)]
pub struct AddrSet {
    include: Vec<Cidr>,
    exclude: Vec<Cidr>,
    any: bool,
    // IPv4 parts as sorted, merged ranges: rules such as botcc list hundreds of addresses and are
    // checked on every new flow, so membership must be a binary search, not a scan.
    inc4: Vec<(u32, u32)>,
    exc4: Vec<(u32, u32)>,
    inc6: Vec<Cidr>,
    exc6: Vec<Cidr>,
}

fn ranges4(v: &[Cidr]) -> Vec<(u32, u32)> {
    let mut r: Vec<(u32, u32)> = v
        .iter()
        .filter_map(|c| match c.addr {
            IpAddr::V4(a) => {
                let p = c.prefix.min(32) as u32;
                let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                let lo = u32::from(a) & m;
                Some((lo, lo | !m))
            }
            _ => None,
        })
        .collect();
    r.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn in_ranges(r: &[(u32, u32)], x: u32) -> bool {
    let i = r.partition_point(|&(lo, _)| lo <= x);
    i > 0 && r[i - 1].1 >= x
}

impl AddrSet {
    pub fn any() -> Self {
        AddrSet {
            any: true,
            ..Default::default()
        }
    }
    pub fn is_any(&self) -> bool {
        self.any && self.exclude.is_empty()
    }
    pub fn matches(&self, ip: &IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let x = u32::from(*a);
                (self.any || in_ranges(&self.inc4, x)) && !in_ranges(&self.exc4, x)
            }
            IpAddr::V6(_) => {
                (self.any || self.inc6.iter().any(|c| c.contains(ip)))
                    && !self.exc6.iter().any(|c| c.contains(ip))
            }
        }
    }

    fn finalize(&mut self) {
        self.inc4 = ranges4(&self.include);
        self.exc4 = ranges4(&self.exclude);
        self.inc6 = self
            .include
            .iter()
            .filter(|c| c.addr.is_ipv6())
            .copied()
            .collect();
        self.exc6 = self
            .exclude
            .iter()
            .filter(|c| c.addr.is_ipv6())
            .copied()
            .collect();
    }
}

#[derive(Debug, Clone, Default)]
pub struct PortSet {
    include: Vec<(u16, u16)>,
    exclude: Vec<(u16, u16)>,
    any: bool,
}

impl PortSet {
    pub fn any() -> Self {
        PortSet {
            any: true,
            ..Default::default()
        }
    }
    pub fn is_any(&self) -> bool {
        self.any && self.exclude.is_empty()
    }
    pub fn matches(&self, p: u16) -> bool {
        let inc = self.any || self.include.iter().any(|&(a, b)| a <= p && p <= b);
        inc && !self.exclude.iter().any(|&(a, b)| a <= p && p <= b)
    }
    /// A single port the set is limited to, used to group rules by destination port.
    pub fn single_ports(&self) -> Option<Vec<u16>> {
        if self.any || !self.exclude.is_empty() {
            return None;
        }
        let mut v = Vec::new();
        for &(a, b) in &self.include {
            if b as u32 - a as u32 > 64 {
                return None;
            }
            v.extend(a..=b);
        }
        Some(v)
    }
}

/// Address and port variables (`$HOME_NET`, `$HTTP_PORTS`), with Suricata's defaults.
#[derive(Debug, Clone)]
pub struct Vars {
    pub addr: HashMap<String, String>,
    pub port: HashMap<String, String>,
}

impl Default for Vars {
    fn default() -> Self {
        let mut addr = HashMap::new();
        addr.insert(
            "HOME_NET".into(),
            "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]".into(),
        );
        addr.insert("EXTERNAL_NET".into(), "!$HOME_NET".into());
        for v in [
            "HTTP_SERVERS",
            "SMTP_SERVERS",
            "SQL_SERVERS",
            "DNS_SERVERS",
            "TELNET_SERVERS",
            "AIM_SERVERS",
            "DC_SERVERS",
            "DNP3_SERVER",
            "DNP3_CLIENT",
            "MODBUS_CLIENT",
            "MODBUS_SERVER",
            "ENIP_CLIENT",
            "ENIP_SERVER",
        ] {
            addr.insert(v.into(), "$HOME_NET".into());
        }
        let mut port = HashMap::new();
        for (k, v) in [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
        ] {
            port.insert(k.into(), v.into());
        }
        Vars { addr, port }
    }
}

impl Vars {
    /// Read `NAME value` / `NAME: value` / `NAME=value` lines (address vars unless the name ends in
    /// `_PORTS`/`_PORT`); returns the problems found, each with its line number.
    pub fn load_text(&mut self, text: &str) -> Vec<String> {
        let mut errs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.ends_with(':') && !l.contains(' ') {
                continue;
            }
            let l = l.trim_start_matches('-').trim();
            let sep = l.find(|c: char| c == ':' || c == '=' || c.is_whitespace());
            let Some(sep) = sep else {
                errs.push(format!(
                    "line {}: expected `NAME value`, got {:?}",
                    i + 1,
                    line
                ));
                continue;
            };
            let name = l[..sep].trim().trim_start_matches('$').to_string();
            let val = l[sep + 1..]
                .trim()
                .trim_matches('"')
                .trim_matches('\'')
                .to_string();
            if val.is_empty() {
                errs.push(format!("line {}: variable {} has no value", i + 1, name));
                continue;
            }
            if name.ends_with("_PORTS") || name.ends_with("_PORT") {
                self.port.insert(name, val);
            } else {
                self.addr.insert(name, val);
            }
        }
        errs
    }
}

fn split_list(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced ']' in {s:?}"));
                }
            }
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '[' in {s:?}"));
    }
    out.push(s[start..].trim());
    Ok(out)
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.trim().parse().map_err(|_| format!("bad address {s:?}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => {
            if let Ok(n) = p.parse::<u8>() {
                if n > max {
                    return Err(format!("bad prefix length in {s:?}"));
                }
                n
            } else if let Ok(IpAddr::V4(m)) = p.parse::<IpAddr>() {
                u32::from(m).count_ones() as u8
            } else {
                return Err(format!("bad netmask in {s:?}"));
            }
        }
    };
    Ok(Cidr { addr, prefix })
}

pub fn parse_addr(s: &str, vars: &Vars) -> Result<AddrSet, String> {
    let mut set = AddrSet::default();
    add_addr(s.trim(), vars, false, &mut set, 0)?;
    if set.include.is_empty() && !set.any {
        set.any = true;
    }
    set.finalize();
    Ok(set)
}

fn add_addr(s: &str, vars: &Vars, neg: bool, set: &mut AddrSet, depth: u32) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("address variables nest too deeply at {s:?}"));
    }
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('!') {
        return add_addr(rest, vars, !neg, set, depth + 1);
    }
    if s.starts_with('[') && s.ends_with(']') {
        for part in split_list(&s[1..s.len() - 1])? {
            add_addr(part, vars, neg, set, depth + 1)?;
        }
        return Ok(());
    }
    if let Some(name) = s.strip_prefix('$') {
        let v = vars
            .addr
            .get(name)
            .ok_or_else(|| format!("undefined address variable ${name}"))?;
        return add_addr(v, vars, neg, set, depth + 1);
    }
    if s.eq_ignore_ascii_case("any") {
        if neg {
            return Err("negated 'any' address matches nothing".into());
        }
        set.any = true;
        return Ok(());
    }
    let c = parse_cidr(s)?;
    if neg {
        set.exclude.push(c);
    } else {
        set.include.push(c);
    }
    Ok(())
}

pub fn parse_ports(s: &str, vars: &Vars) -> Result<PortSet, String> {
    let mut set = PortSet::default();
    add_port(s.trim(), vars, false, &mut set, 0)?;
    if set.include.is_empty() && !set.any {
        set.any = true;
    }
    Ok(set)
}

fn add_port(s: &str, vars: &Vars, neg: bool, set: &mut PortSet, depth: u32) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("port variables nest too deeply at {s:?}"));
    }
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('!') {
        return add_port(rest, vars, !neg, set, depth + 1);
    }
    if s.starts_with('[') && s.ends_with(']') {
        for part in split_list(&s[1..s.len() - 1])? {
            add_port(part, vars, neg, set, depth + 1)?;
        }
        return Ok(());
    }
    if let Some(name) = s.strip_prefix('$') {
        let v = vars
            .port
            .get(name)
            .ok_or_else(|| format!("undefined port variable ${name}"))?;
        return add_port(v, vars, neg, set, depth + 1);
    }
    if s.eq_ignore_ascii_case("any") {
        if neg {
            return Err("negated 'any' port matches nothing".into());
        }
        set.any = true;
        return Ok(());
    }
    let num = |t: &str| {
        t.trim()
            .parse::<u16>()
            .map_err(|_| format!("bad port {s:?}"))
    };
    let range = if let Some((a, b)) = s.split_once(':') {
        let lo = if a.trim().is_empty() { 0 } else { num(a)? };
        let hi = if b.trim().is_empty() { 65535 } else { num(b)? };
        if lo > hi {
            return Err(format!("port range {s:?} is reversed"));
        }
        (lo, hi)
    } else {
        let p = num(s)?;
        (p, p)
    };
    if neg {
        set.exclude.push(range);
    } else {
        set.include.push(range);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_net_is_negation_of_home_net() {
        let v = Vars::default();
        let a = parse_addr("$EXTERNAL_NET", &v).unwrap();
        assert!(!a.matches(&"10.1.2.3".parse().unwrap()));
        assert!(a.matches(&"8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn port_lists_ranges_and_negation() {
        let v = Vars::default();
        let p = parse_ports("[1024:,!8080]", &v).unwrap();
        assert!(p.matches(2000));
        assert!(!p.matches(8080));
        assert!(!p.matches(80));
        assert!(parse_ports("[80", &v).is_err());
    }
}
