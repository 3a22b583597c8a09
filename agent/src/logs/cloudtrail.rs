//! AWS CloudTrail files (`{"Records":[...]}`, plain or gzip) into one engine line per record.
//!
//! Records are wrapped the way Wazuh's aws-s3 module hands them to its rules
//! (`{"integration":"aws","aws":{...record, "source":"cloudtrail","log_info":{...}}}`), so the
//! upstream `0350-amazon_rules.xml` fields (`aws.eventName`, `aws.errorCode`...) apply unchanged and
//! our own CloudTrail rules use the same names.

use std::io::Read;

use serde_json::Value;

/// Decompressed CloudTrail files larger than this are refused (a gzip bomb must not exhaust memory).
pub const MAX_DECOMPRESSED: u64 = 512 << 20;

#[derive(Debug)]
pub struct CloudTrailRecord {
    /// Compact JSON for the engine.
    pub line: String,
    /// `eventTime` as unix seconds, when present and valid.
    pub time: Option<i64>,
}

/// Why a file could not be read; `Incomplete` files may still be being written.
#[derive(Debug, PartialEq, Eq)]
pub enum CloudTrailError {
    Incomplete(String),
    Invalid(String),
}

impl std::fmt::Display for CloudTrailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloudTrailError::Incomplete(s) | CloudTrailError::Invalid(s) => f.write_str(s),
        }
    }
}

/// Parses one CloudTrail file's bytes (gzip detected by its magic bytes, not the name).
pub fn records(bytes: &[u8], log_file: &str) -> Result<Vec<CloudTrailRecord>, CloudTrailError> {
    let owned;
    let json: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut dec = flate2::read::MultiGzDecoder::new(bytes).take(MAX_DECOMPRESSED + 1);
        if let Err(e) = dec.read_to_end(&mut out) {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                CloudTrailError::Incomplete(format!("gzip stream ends early: {e}"))
            } else {
                CloudTrailError::Invalid(format!("not valid gzip: {e}"))
            });
        }
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(CloudTrailError::Invalid(format!(
                "decompresses to more than {MAX_DECOMPRESSED} bytes"
            )));
        }
        owned = out;
        &owned
    } else {
        bytes
    };
    let doc: Value = serde_json::from_slice(json).map_err(|e| {
        if e.is_eof() {
            CloudTrailError::Incomplete(format!("JSON ends early: {e}"))
        } else {
            CloudTrailError::Invalid(format!("not JSON: {e}"))
        }
    })?;
    let Some(recs) = doc.get("Records").and_then(Value::as_array) else {
        return Err(CloudTrailError::Invalid(
            "no \"Records\" array at the top level (not a CloudTrail file)".into(),
        ));
    };
    let mut out = Vec::with_capacity(recs.len());
    for r in recs {
        let Value::Object(fields) = r else { continue };
        let time = fields
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t.unix_timestamp());
        let mut aws = fields.clone();
        aws.insert("source".into(), Value::String("cloudtrail".into()));
        aws.insert(
            "log_info".into(),
            serde_json::json!({ "log_file": log_file }),
        );
        let wrapped = serde_json::json!({ "integration": "aws", "aws": aws });
        out.push(CloudTrailRecord {
            line: wrapped.to_string(),
            time,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const DOC: &str = r#"{"Records":[
      {"eventTime":"2024-03-01T10:00:00Z","eventName":"ConsoleLogin","responseElements":{"ConsoleLogin":"Failure"}},
      {"eventTime":"2024-03-01T10:00:01Z","eventName":"DeleteTrail","errorCode":"AccessDenied"}]}"#;

    #[test]
    fn plain_and_gzip_files_give_one_wrapped_line_per_record() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(DOC.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        for bytes in [DOC.as_bytes(), &gz[..]] {
            let r = records(bytes, "x.json.gz").unwrap();
            assert_eq!(r.len(), 2);
            let v: Value = serde_json::from_str(&r[0].line).unwrap();
            assert!(!r[0].line.contains('\n'));
            assert_eq!(v["integration"], "aws");
            assert_eq!(v["aws"]["eventName"], "ConsoleLogin");
            assert_eq!(v["aws"]["source"], "cloudtrail");
            assert_eq!(v["aws"]["responseElements"]["ConsoleLogin"], "Failure");
            assert_eq!(r[0].time, Some(1709287200));
        }
    }

    #[test]
    fn half_written_files_are_incomplete_and_other_json_is_invalid() {
        assert!(matches!(
            records(&DOC.as_bytes()[..40], "x"),
            Err(CloudTrailError::Incomplete(_))
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(DOC.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert!(matches!(
            records(&gz[..gz.len() / 2], "x"),
            Err(CloudTrailError::Incomplete(_))
        ));
        let e = records(br#"{"foo":1}"#, "x").unwrap_err();
        assert!(e.to_string().contains("Records"), "{e}");
        assert!(matches!(
            records(b"[1,", "x"),
            Err(CloudTrailError::Incomplete(_))
        ));
        assert!(matches!(
            records(b"}{", "x"),
            Err(CloudTrailError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = records(&data, "x");
            let mut gz = vec![0x1f, 0x8b];
            gz.extend_from_slice(&data);
            let _ = records(&gz, "x");
        }
    }
}
