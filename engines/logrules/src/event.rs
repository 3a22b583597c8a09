//! The decoded event: pre-decoded syslog header, decoder output, and what rules look at.

/// The fields OSSEC/Wazuh know by name ("static" fields); anything else a decoder names is a
/// dynamic field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Std {
    SrcIp = 0,
    DstIp,
    SrcPort,
    DstPort,
    Protocol,
    Action,
    SrcUser,
    DstUser,
    Id,
    Url,
    Data,
    Status,
    SystemName,
}

pub const STD_COUNT: usize = 13;

pub const STD_NAMES: [&str; STD_COUNT] = [
    "srcip",
    "dstip",
    "srcport",
    "dstport",
    "protocol",
    "action",
    "srcuser",
    "dstuser",
    "id",
    "url",
    "extra_data",
    "status",
    "system_name",
];

impl Std {
    pub const ALL: [Std; STD_COUNT] = [
        Std::SrcIp,
        Std::DstIp,
        Std::SrcPort,
        Std::DstPort,
        Std::Protocol,
        Std::Action,
        Std::SrcUser,
        Std::DstUser,
        Std::Id,
        Std::Url,
        Std::Data,
        Std::Status,
        Std::SystemName,
    ];

    pub fn name(self) -> &'static str {
        STD_NAMES[self as usize]
    }

    /// Map a decoder `order` / rule field name to a static field.
    pub fn from_name(n: &str) -> Option<Std> {
        Some(match n.trim() {
            "srcip" => Std::SrcIp,
            "dstip" => Std::DstIp,
            "srcport" => Std::SrcPort,
            "dstport" => Std::DstPort,
            "protocol" => Std::Protocol,
            "action" => Std::Action,
            "srcuser" => Std::SrcUser,
            "dstuser" | "user" => Std::DstUser,
            "id" => Std::Id,
            "url" => Std::Url,
            "data" | "extra_data" => Std::Data,
            "status" => Std::Status,
            "system_name" => Std::SystemName,
            _ => return None,
        })
    }
}

/// Where a rule or decoder reads a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldKey {
    Std(Std),
    Dyn(String),
}

impl FieldKey {
    pub fn from_name(n: &str) -> FieldKey {
        match Std::from_name(n) {
            Some(s) => FieldKey::Std(s),
            None => FieldKey::Dyn(n.trim().to_string()),
        }
    }
    pub fn name(&self) -> &str {
        match self {
            FieldKey::Std(s) => s.name(),
            FieldKey::Dyn(d) => d,
        }
    }
}

/// One log line being evaluated.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub full_log: String,
    /// Byte offset of the message (after the syslog header) in `full_log`.
    pub log_start: usize,
    pub hostname: Option<String>,
    pub program_name: Option<String>,
    pub location: String,
    /// Event time (unix seconds) used for correlation.
    pub time: i64,
    /// Index of the decoder that named the event, if any.
    pub decoder: Option<usize>,
    /// The name id (`Ruleset::names`) events of that decoder carry, for `decoded_as`.
    pub decoder_name: Option<u32>,
    pub std: [Option<String>; STD_COUNT],
    pub dynamic: Vec<(String, String)>,
}

impl Event {
    pub fn log(&self) -> &str {
        &self.full_log[self.log_start..]
    }

    pub fn get_std(&self, s: Std) -> Option<&str> {
        self.std[s as usize].as_deref()
    }

    pub fn get(&self, k: &FieldKey) -> Option<&str> {
        match k {
            FieldKey::Std(s) => self.get_std(*s),
            FieldKey::Dyn(n) => self.get_dyn(n),
        }
    }

    pub fn get_dyn(&self, n: &str) -> Option<&str> {
        if let Some(s) = Std::from_name(n) {
            if let Some(v) = self.get_std(s) {
                return Some(v);
            }
        }
        match n {
            "hostname" => return self.hostname.as_deref(),
            "program_name" => return self.program_name.as_deref(),
            "location" => return Some(self.location.as_str()),
            _ => {}
        }
        // Wazuh looks dynamic fields up without regard to case (ScriptBlockId vs scriptBlockId).
        self.dynamic
            .iter()
            .find(|(k, _)| k == n)
            .or_else(|| self.dynamic.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, k: &FieldKey, v: String) {
        match k {
            FieldKey::Std(s) => self.std[*s as usize] = Some(v),
            FieldKey::Dyn(n) => {
                if let Some(slot) = self.dynamic.iter_mut().find(|(kk, _)| kk == n) {
                    slot.1 = v;
                } else {
                    self.dynamic.push((n.clone(), v));
                }
            }
        }
    }
}
