//! Logging through env_logger: human-readable lines, or one JSON object per line for log shippers.
//! A line written while a request is served carries that request's `trace_id` and `span_id`.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};

use crate::config::LogFormat;

/// `filter` (`RUST_LOG`, in env_logger's syntax) picks what is logged.
pub fn init(format: LogFormat, filter: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter);
    // Lines are one line each: no scan of every message for line breaks to indent after them,
    // which cost every access line.
    builder.format_indent(None);
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let mut line = serde_json::Map::new();
            line.insert("ts".into(), chrono::Utc::now().to_rfc3339().into());
            line.insert("level".into(), record.level().as_str().into());
            line.insert("target".into(), record.target().into());
            line.insert("msg".into(), record.args().to_string().into());
            let _ = record.key_values().visit(&mut JsonFields(&mut line));
            if let Some(trace) = super::current_trace() {
                line.insert("trace_id".into(), trace.trace_id.into());
                line.insert("span_id".into(), trace.span_id.into());
            }
            writeln!(buf, "{}", serde_json::Value::Object(line))
        });
    }
    // A second init (tests build many apps in one process) keeps the first logger.
    let _ = builder.try_init();
}

struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let value = serde_json::to_value(&value).unwrap_or_else(|_| value.to_string().into());
        self.0.insert(key.as_str().to_owned(), value);
        Ok(())
    }
}
