//! Load decoder, rule and list files from disk into a [`RulesetBuilder`].
//!
//! A path may be one XML file, a flat directory of XML files, or a directory laid out like
//! Wazuh's or OSSEC's ruleset (`decoders/`, `rules/`, `lists/`). For OSSEC's layout, an
//! `ossec/RULES-INCLUDED.txt`-style list (a `RULES-INCLUDED.txt` next to `rules/`) fixes which rule
//! files load and in what order. Several paths stack: a later file with the same name as an
//! earlier one replaces it, and rules marked `overwrite="yes"` replace earlier rule ids.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bannin_logrules::ruleset::{sniff_kind, FileKind};
use bannin_logrules::RulesetBuilder;

/// Files collected from the ruleset paths, in load order.
#[derive(Default)]
pub struct RulesetFiles {
    /// (kind, name used for replacement, display path, contents)
    xml: Vec<(FileKind, String, String, Vec<u8>)>,
    lists: Vec<(String, Vec<u8>)>,
    pub not_loaded: Vec<String>,
}

impl RulesetFiles {
    pub fn is_empty(&self) -> bool {
        self.xml.is_empty()
    }

    pub fn file_count(&self) -> usize {
        self.xml.len() + self.lists.len()
    }

    /// Add everything under `path`.
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("ruleset path {} is not readable", path.display()))?;
        if meta.is_file() {
            return self.add_xml_file(path, None);
        }
        let dec = path.join("decoders");
        let rules = path.join("rules");
        let lists = path.join("lists");
        let laid_out = dec.is_dir() || rules.is_dir() || lists.is_dir();
        if !laid_out {
            for f in sorted(path, "xml")? {
                self.add_xml_file(&f, None)?;
            }
            return Ok(());
        }
        if lists.is_dir() {
            self.add_lists(&lists, &lists)?;
        }
        if dec.is_dir() {
            for f in sorted(&dec, "xml")? {
                self.add_xml_file(&f, Some(FileKind::Decoders))?;
            }
        }
        if rules.is_dir() {
            let included = path.join("RULES-INCLUDED.txt");
            if included.is_file() {
                let text = std::fs::read_to_string(&included)
                    .with_context(|| format!("reading {}", included.display()))?;
                let listed: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect();
                for name in &listed {
                    let f = rules.join(name);
                    if f.is_file() {
                        self.add_xml_file(&f, Some(FileKind::Rules))?;
                    } else {
                        self.not_loaded.push(format!(
                            "{}: listed in {} but missing",
                            f.display(),
                            included.display()
                        ));
                    }
                }
                for f in sorted(&rules, "xml")? {
                    let n = f
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string();
                    if !listed.contains(&n.as_str()) {
                        self.not_loaded.push(format!(
                            "{}: not listed in {}, not loaded",
                            f.display(),
                            included.display()
                        ));
                    }
                }
            } else {
                for f in sorted(&rules, "xml")? {
                    self.add_xml_file(&f, Some(FileKind::Rules))?;
                }
            }
        }
        // XML files directly in the directory (a flat layout mixed in).
        for f in sorted(path, "xml")? {
            self.add_xml_file(&f, None)?;
        }
        Ok(())
    }

    fn add_xml_file(&mut self, f: &Path, kind: Option<FileKind>) -> Result<()> {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let kind = kind.unwrap_or_else(|| sniff_kind(&String::from_utf8_lossy(&bytes)));
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let shown = f.display().to_string();
        if let Some(slot) = self
            .xml
            .iter_mut()
            .find(|(k, n, _, _)| *k == kind && *n == name)
        {
            *slot = (kind, name, shown, bytes);
        } else {
            self.xml.push((kind, name, shown, bytes));
        }
        Ok(())
    }

    fn add_lists(&mut self, root: &Path, dir: &Path) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                self.add_lists(root, &p)?;
            } else if p.is_file() && p.extension().map(|e| e != "cdb").unwrap_or(true) {
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .to_string();
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                if let Some(slot) = self.lists.iter_mut().find(|(n, _)| *n == rel) {
                    slot.1 = bytes;
                } else {
                    self.lists.push((rel, bytes));
                }
            }
        }
        Ok(())
    }

    /// Hand everything to the engine's builder: lists, then decoders, then rules.
    pub fn into_builder(self) -> RulesetBuilder {
        let mut b = RulesetBuilder::new();
        for (n, bytes) in &self.lists {
            b.add_list(n, bytes);
        }
        for (k, _, shown, bytes) in &self.xml {
            if *k == FileKind::Decoders {
                b.add_decoders(shown, bytes);
            }
        }
        for (k, _, shown, bytes) in &self.xml {
            match k {
                FileKind::Rules => b.add_rules(shown, bytes),
                FileKind::Unknown => {
                    b.add_xml(shown, bytes);
                }
                FileKind::Decoders => {}
            }
        }
        b
    }
}

fn sorted(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_paths_replace_same_named_files_and_kinds_are_sniffed() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(
            a.path().join("d.xml"),
            r#"<decoder name="x"><prematch>^x</prematch></decoder>"#,
        )
        .unwrap();
        std::fs::write(
            a.path().join("r.xml"),
            r#"<group name="g"><rule id="100" level="3"><match>old</match></rule></group>"#,
        )
        .unwrap();
        std::fs::write(
            b.path().join("r.xml"),
            r#"<group name="g"><rule id="100" level="4"><match>new</match></rule></group>"#,
        )
        .unwrap();
        let mut f = RulesetFiles::default();
        f.add_path(a.path()).unwrap();
        f.add_path(b.path()).unwrap();
        assert_eq!(f.file_count(), 2);
        let (rs, summary) = f.into_builder().build();
        assert_eq!(summary.decoders, 1);
        assert_eq!(rs.rules.len(), 1);
        assert_eq!(rs.rules[0].level, 4);
    }

    #[test]
    fn ossec_layout_follows_rules_included() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rules")).unwrap();
        std::fs::write(d.path().join("RULES-INCLUDED.txt"), "b.xml\n").unwrap();
        std::fs::write(
            d.path().join("rules/a.xml"),
            r#"<group name="g"><rule id="100" level="3"><match>a</match></rule></group>"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("rules/b.xml"),
            r#"<group name="g"><rule id="101" level="3"><match>b</match></rule></group>"#,
        )
        .unwrap();
        let mut f = RulesetFiles::default();
        f.add_path(d.path()).unwrap();
        assert_eq!(f.not_loaded.len(), 1);
        let (rs, _) = f.into_builder().build();
        assert_eq!(rs.rules.len(), 1);
        assert_eq!(rs.rules[0].id, 101);
    }
}
