//! Paths and globs of `[[logs.files]]`: which regular files match now, and which directory to watch
//! so that files created later are noticed.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

pub struct PathPattern {
    /// As configured (also the key under which the agent remembers having seen this input).
    pub text: String,
    /// The deepest directory without wildcards (the path itself for a plain path).
    prefix: PathBuf,
    matcher: Option<globset::GlobMatcher>,
    /// Directory levels below `prefix` a match can be at; `None` with `**`.
    max_depth: Option<usize>,
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

impl PathPattern {
    pub fn new(text: &str) -> Result<PathPattern> {
        let path = Path::new(text);
        let mut prefix = PathBuf::new();
        let mut rest = 0usize;
        let mut deep = false;
        let mut in_glob = false;
        for c in path.components() {
            let s = c.as_os_str().to_string_lossy();
            if !in_glob && !has_meta(&s) {
                prefix.push(c);
                continue;
            }
            in_glob = true;
            rest += 1;
            if s.contains("**") {
                deep = true;
            }
            if matches!(c, Component::ParentDir) {
                anyhow::bail!("`{text}`: `..` after a wildcard is not supported");
            }
        }
        if !in_glob {
            return Ok(PathPattern {
                text: text.to_string(),
                prefix,
                matcher: None,
                max_depth: Some(0),
            });
        }
        let glob = globset::GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .with_context(|| format!("`{text}` is not a valid glob"))?;
        Ok(PathPattern {
            text: text.to_string(),
            prefix,
            matcher: Some(glob.compile_matcher()),
            max_depth: if deep { None } else { Some(rest) },
        })
    }

    /// Every `*.json` and `*.json.gz` below `dir` (an S3-synced CloudTrail tree).
    pub fn cloudtrail_dir(dir: &Path) -> Result<PathPattern> {
        let d = dir.to_string_lossy();
        let escaped = globset::escape(d.trim_end_matches('/'));
        let mut p = PathPattern::new(&format!("{escaped}/**/{{*.json,*.json.gz}}"))?;
        p.text = d.into_owned();
        p.prefix = dir.to_path_buf();
        Ok(p)
    }

    pub fn is_glob(&self) -> bool {
        self.matcher.is_some()
    }

    /// The directory to watch for new files.
    pub fn watch_dir(&self) -> &Path {
        if self.matcher.is_some() {
            &self.prefix
        } else {
            self.prefix.parent().unwrap_or(Path::new("/"))
        }
    }

    pub fn matches(&self, p: &Path) -> bool {
        match &self.matcher {
            Some(m) => m.is_match(p),
            None => p == self.prefix,
        }
    }

    /// Regular files matching now, sorted.
    pub fn expand(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        match &self.matcher {
            None => {
                if std::fs::metadata(&self.prefix)
                    .map(|m| m.is_file())
                    .unwrap_or(false)
                {
                    out.push(self.prefix.clone());
                }
            }
            Some(m) => walk(&self.prefix, 0, self.max_depth, m, &mut out),
        }
        out.sort();
        out
    }
}

fn walk(
    dir: &Path,
    depth: usize,
    max: Option<usize>,
    m: &globset::GlobMatcher,
    out: &mut Vec<PathBuf>,
) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if max.map(|x| depth + 1 < x).unwrap_or(true) {
                walk(&p, depth + 1, max, m, out);
            }
        } else if m.is_match(&p)
            && (ft.is_file() || std::fs::metadata(&p).map(|x| x.is_file()).unwrap_or(false))
        {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_files_at_its_depth_only_and_double_star_recurses() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        for f in ["x.log", "y.txt", "a/z.log", "a/b/w.log"] {
            std::fs::write(root.join(f), "").unwrap();
        }
        let p = PathPattern::new(&format!("{}/*.log", root.display())).unwrap();
        assert_eq!(p.expand(), vec![root.join("x.log")]);
        assert_eq!(p.watch_dir(), root);
        let p = PathPattern::new(&format!("{}/*/*.log", root.display())).unwrap();
        assert_eq!(p.expand(), vec![root.join("a/z.log")]);
        let p = PathPattern::new(&format!("{}/**/*.log", root.display())).unwrap();
        assert_eq!(
            p.expand(),
            vec![
                root.join("a/b/w.log"),
                root.join("a/z.log"),
                root.join("x.log")
            ]
        );
        let p = PathPattern::new(&format!("{}/y.txt", root.display())).unwrap();
        assert!(!p.is_glob());
        assert_eq!(p.expand(), vec![root.join("y.txt")]);
        assert_eq!(p.watch_dir(), root);
    }

    #[test]
    fn cloudtrail_directory_means_json_and_json_gz_below_it() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("AWSLogs/1/CloudTrail/eu-west-1/2024/01/02")).unwrap();
        let deep = root.join("AWSLogs/1/CloudTrail/eu-west-1/2024/01/02");
        for f in ["a.json.gz", "b.json", "c.json.gz.7fA3b", "d.txt"] {
            std::fs::write(deep.join(f), "").unwrap();
        }
        let p = PathPattern::cloudtrail_dir(root).unwrap();
        assert_eq!(
            p.expand(),
            vec![deep.join("a.json.gz"), deep.join("b.json")]
        );
    }
}
