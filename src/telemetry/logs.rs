//! Logging through env_logger: human-readable lines, or one JSON object per line for log shippers.
//! A line written while a request is served carries that request's `trace_id` and `span_id`.

use std::io::{self, Write};

use log::kv::{Key, Value, VisitSource};
use serde::{Serialize, Serializer as _, ser::SerializeMap};

use super::log_buffer::{self, Written};
use crate::config::LogFormat;

/// `filter` (`RUST_LOG`, in env_logger's syntax) picks what is logged. Lines go to stderr through
/// `log_buffer`; keep the returned `Written` until the end, so the last lines are written too.
pub fn init(format: LogFormat, filter: &str) -> Option<Written> {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter);
    let (lines, written) = log_buffer::new(io::stderr());
    builder.target(env_logger::Target::Pipe(Box::new(lines)));
    // Lines are one line each: no scan of every message for line breaks to indent after them,
    // which cost every access line.
    builder.format_indent(None);
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            json_line(&mut *buf, record)?;
            writeln!(buf)
        });
    }
    // A second init (tests build many apps in one process) keeps the first logger.
    builder.try_init().ok()?;
    if let Err(error) = written.start_thread() {
        // Lines are then written only when the buffer fills, and at the end: say so once.
        eprintln!("bank-api: no thread to write log lines as they come: {error}");
    }
    Some(written)
}

/// One JSON object: `ts`, `level`, `target`, `msg`, the record's key-values, and the trace and
/// span ids of the request being served. Written field by field into the line's buffer: building
/// a `serde_json::Map` first cost every access line an allocation per field.
fn json_line(buf: &mut impl Write, record: &log::Record) -> std::io::Result<()> {
    let mut line = serde_json::Serializer::new(buf);
    let mut fields = line.serialize_map(None)?;
    fields.serialize_entry("ts", &chrono::Utc::now().to_rfc3339())?;
    fields.serialize_entry("level", record.level().as_str())?;
    fields.serialize_entry("target", record.target())?;
    fields.serialize_entry("msg", &Text(record.args()))?;
    let mut visitor = JsonFields {
        fields: &mut fields,
        failed: None,
    };
    let _ = record.key_values().visit(&mut visitor);
    if let Some(failed) = visitor.failed {
        return Err(failed.into());
    }
    if let Some(trace) = super::current_trace() {
        fields.serialize_entry("trace_id", &Text(trace.trace_id))?;
        fields.serialize_entry("span_id", &Text(trace.span_id))?;
    }
    SerializeMap::end(fields)?;
    Ok(())
}

/// A record's value: text, a number or a boolean as itself, anything else as its text. No value
/// can fail its line (the line is written as it is built, so a failed field would lose it).
struct Field<'v>(Value<'v>);

impl Serialize for Field<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = &self.0;
        if let Some(text) = value.to_borrowed_str() {
            serializer.serialize_str(text)
        } else if let Some(number) = value.to_i64() {
            serializer.serialize_i64(number)
        } else if let Some(number) = value.to_u64() {
            serializer.serialize_u64(number)
        } else if let Some(number) = value.to_f64() {
            serializer.serialize_f64(number)
        } else if let Some(yes) = value.to_bool() {
            serializer.serialize_bool(yes)
        } else {
            serializer.collect_str(value)
        }
    }
}

/// A value written as a JSON string through its `Display`, without an intermediate `String`.
struct Text<T>(T);

impl<T: std::fmt::Display> Serialize for Text<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

struct JsonFields<'a, M> {
    fields: &'a mut M,
    failed: Option<serde_json::Error>,
}

impl<'kvs, M> VisitSource<'kvs> for JsonFields<'_, M>
where
    M: SerializeMap<Error = serde_json::Error>,
{
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.fields
            .serialize_entry(key.as_str(), &Field(value))
            .map_err(|error| {
                let told = log::kv::Error::msg("a log line could not be written");
                self.failed = Some(error);
                told
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_with_the_records_fields() {
        let mut line = Vec::new();
        let fields: &[(&str, log::kv::Value)] = &[
            ("request_id", "abc".into()),
            ("status", 201.into()),
            ("latency_ms", 1.5.into()),
            ("bytes", u64::MAX.into()),
            ("cached", true.into()),
            (
                "peer",
                log::kv::Value::from_display(&std::net::Ipv4Addr::LOCALHOST),
            ),
        ];
        let record = log::Record::builder()
            .level(log::Level::Info)
            .target("access")
            .args(format_args!("POST /x \"quoted\"\nnext"))
            .key_values(&fields)
            .build();
        json_line(&mut line, &record).expect("written");
        let line = String::from_utf8(line).expect("UTF-8");
        assert!(!line.contains('\n'), "one line: {line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(parsed["level"], "INFO");
        assert_eq!(parsed["target"], "access");
        assert_eq!(parsed["msg"], "POST /x \"quoted\"\nnext");
        assert_eq!(parsed["request_id"], "abc");
        assert_eq!(parsed["status"], 201);
        assert_eq!(parsed["latency_ms"], 1.5);
        assert_eq!(parsed["bytes"], u64::MAX);
        assert_eq!(parsed["cached"], true);
        assert_eq!(parsed["peer"], "127.0.0.1");
        chrono::DateTime::parse_from_rfc3339(parsed["ts"].as_str().expect("ts")).expect("RFC 3339");
    }
}
