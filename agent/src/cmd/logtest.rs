//! `bannin-agent logtest`: evaluate log lines from stdin against decoders and rules, like
//! `ossec-logtest` / `wazuh-logtest`. All lines of one run form one session, so correlation
//! rules work; `-U rule:level:decoder` exits 0 only when the last event matches.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bannin_logrules::{Engine, TimeSource, Verdict};

use crate::logs::ruleset_dir::RulesetFiles;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Clock {
    /// The log's own timestamp where it has one.
    Log,
    /// The time the line is read.
    Receive,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ruleset to load: a Wazuh/OSSEC-style directory (decoders/, rules/, lists/), a flat
    /// directory of XML files, or one XML file. Repeatable; later paths add to earlier ones and
    /// replace same-named files. Default: the repository's signatures/logs.
    #[arg(long = "ruleset", value_name = "PATH")]
    pub ruleset: Vec<PathBuf>,
    /// Exit 0 only if the last event matches RULE:LEVEL:DECODER (upstream test runners).
    #[arg(short = 'U', value_name = "RULE:LEVEL:DECODER")]
    pub expect: Option<String>,
    /// One JSON object per input line instead of the verbose phases.
    #[arg(long)]
    pub json: bool,
    /// Which clock correlation (frequency/timeframe) uses.
    #[arg(long, value_enum, default_value = "log")]
    pub time: Clock,
    /// Print the list of skipped rules/decoders at load.
    #[arg(long)]
    pub show_skipped: bool,
}

/// Bannin's own default rules: `signatures/logs` under the working directory, else the one
/// next to the agent's sources (a development checkout).
fn default_ruleset() -> PathBuf {
    let here = PathBuf::from("signatures/logs");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../signatures/logs"))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let expect = match &args.expect {
        Some(s) => {
            let parts: Vec<&str> = s.splitn(3, ':').collect();
            if parts.len() != 3 {
                bail!("-U expects RULE:LEVEL:DECODER, got '{s}'");
            }
            Some((
                parts[0].to_string(),
                parts[1].to_string(),
                parts[2].to_string(),
            ))
        }
        None => None,
    };
    let t0 = Instant::now();
    let paths = if args.ruleset.is_empty() {
        vec![default_ruleset()]
    } else {
        args.ruleset.clone()
    };
    let mut files = RulesetFiles::default();
    for p in &paths {
        files
            .add_path(p)
            .with_context(|| format!("loading ruleset {}", p.display()))?;
    }
    if files.is_empty() {
        eprintln!(
            "logtest: no decoder or rule files found in {}; every line will be reported unmatched \
             (pass --ruleset PATH)",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if args.show_skipped {
        for n in &files.not_loaded {
            eprintln!("logtest: {n}");
        }
    } else if !files.not_loaded.is_empty() {
        eprintln!(
            "logtest: {} rule file(s) not loaded (not listed in RULES-INCLUDED.txt or missing)",
            files.not_loaded.len()
        );
    }
    let (rs, summary) = files.into_builder().build();
    eprintln!(
        "logtest: ruleset loaded in {:.1} ms: {summary}",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    if args.show_skipped {
        for s in &summary.skipped {
            eprintln!("logtest: {s}");
        }
    } else if !summary.skipped.is_empty() {
        eprintln!("logtest: (--show-skipped lists each skipped construct with file and line)");
    }
    let mut eng = Engine::new(Arc::new(rs));
    eng.time_source = match args.time {
        Clock::Log => TimeSource::LogTime,
        Clock::Receive => TimeSource::Receive,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut last: Option<Verdict> = None;
    let mut buf = Vec::new();
    let mut input = stdin.lock();
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).context("reading stdin")?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let v = eng.process(line, now);
        if args.json {
            serde_json::to_writer(&mut out, &to_json(&v))?;
            writeln!(out)?;
        } else {
            print_phases(&mut out, line, &v)?;
        }
        last = Some(v);
    }
    out.flush()?;
    if let Some((rule, level, decoder)) = expect {
        let ok = last
            .as_ref()
            .map(|v| {
                let (r, l) = v
                    .rule
                    .as_ref()
                    .map(|r| (r.id.to_string(), r.level.to_string()))
                    .unwrap_or_default();
                // Upstream compares case-insensitively and needs a decoder and a rule to
                // have fired (an event no decoder named never matches).
                v.rule.is_some()
                    && v.decoder.is_some()
                    && r.eq_ignore_ascii_case(&rule)
                    && l.eq_ignore_ascii_case(&level)
                    && v.decoder
                        .clone()
                        .unwrap_or_default()
                        .eq_ignore_ascii_case(&decoder)
            })
            .unwrap_or(false);
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(v: &Verdict) -> serde_json::Value {
    let mut fields = serde_json::Map::new();
    for (k, val) in &v.fields {
        fields.insert(k.clone(), serde_json::Value::String(val.clone()));
    }
    let r = v.rule.as_ref();
    serde_json::json!({
        "decoder": v.decoder,
        "rule_id": r.map(|r| r.id),
        "level": r.map(|r| r.level),
        "alert": v.alert,
        "groups": r.map(|r| r.groups.clone()).unwrap_or_default(),
        "description": r.map(|r| r.description.clone()),
        "mitre": r.map(|r| r.mitre.clone()).unwrap_or_default(),
        "hostname": v.hostname,
        "program_name": v.program_name,
        "fields": fields,
    })
}

fn print_phases(out: &mut impl Write, line: &str, v: &Verdict) -> Result<()> {
    writeln!(out, "\n**Phase 1: Completed pre-decoding.")?;
    writeln!(out, "       full event: '{line}'")?;
    if let Some(h) = &v.hostname {
        writeln!(out, "       hostname: '{h}'")?;
    }
    if let Some(p) = &v.program_name {
        writeln!(out, "       program_name: '{p}'")?;
    }
    writeln!(out, "       log: '{}'", v.log)?;
    writeln!(out, "\n**Phase 2: Completed decoding.")?;
    match &v.decoder {
        Some(d) => {
            writeln!(out, "       decoder: '{d}'")?;
            for (k, val) in &v.fields {
                writeln!(out, "       {k}: '{val}'")?;
            }
        }
        None => writeln!(out, "       No decoder matched.")?,
    }
    if let Some(r) = &v.rule {
        writeln!(out, "\n**Phase 3: Completed filtering (rules).")?;
        writeln!(out, "       Rule id: '{}'", r.id)?;
        writeln!(out, "       Level: '{}'", r.level)?;
        writeln!(out, "       Description: '{}'", r.description)?;
        if !r.groups.is_empty() {
            writeln!(out, "       Groups: '{}'", r.groups.join(", "))?;
        }
        if !r.mitre.is_empty() {
            writeln!(out, "       MITRE: '{}'", r.mitre.join(", "))?;
        }
        if v.alert {
            writeln!(out, "**Alert to be generated.")?;
        }
    }
    writeln!(out)?;
    Ok(())
}
