//! The stable OpenTelemetry database conventions for SeaORM's statement spans. SeaORM names them
//! `sea_orm.execute`, `sea_orm.query_one`... with the attributes of the old, experimental
//! conventions (`db.system`, `db.statement`, `db.operation`); Tempo's and other backends'
//! database views look for the stable ones. The exporter is given each batch through
//! [`StableConventions`], which renames them: `db.system.name`, `db.query.text`,
//! `db.operation.name` (the statement's first word), `db.collection.name` (the table it reads or
//! writes) or `db.stored_procedure.name` (the ledger's functions), and the span
//! `{db.operation.name} {table or function}`.

use std::time::Duration;

use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

#[derive(Debug)]
pub struct StableConventions<E>(pub E);

impl<E: SpanExporter> SpanExporter for StableConventions<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        batch.iter_mut().for_each(stabilize);
        self.0.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// A statement's span in the stable words; any other span as it is.
fn stabilize(span: &mut SpanData) {
    let Some(action) = span.name.strip_prefix("sea_orm.") else {
        return;
    };
    // `begin`, `commit` and `rollback` carry no statement text: their name is their operation.
    let mut operation = action.to_ascii_uppercase();
    let mut target = None;
    let mut text = false;
    span.attributes.retain_mut(|attribute| {
        let stable = match attribute.key.as_str() {
            "db.system" => "db.system.name",
            "db.operation" => return false,
            "db.statement" => {
                text = true;
                let statement = attribute.value.as_str();
                if let Some(first) = statement.split_whitespace().next() {
                    operation = first.to_ascii_uppercase();
                }
                target = target_of(&statement);
                "db.query.text"
            }
            _ => return true,
        };
        attribute.key = Key::from_static_str(stable);
        true
    });
    span.name = match &target {
        Some(Target::Collection(name) | Target::Procedure(name)) => format!("{operation} {name}"),
        None => operation.clone(),
    }
    .into();
    if !text {
        // `BEGIN`, `COMMIT`, `ROLLBACK`: the statement is its operation.
        span.attributes.push(KeyValue::new(
            "db.query.text",
            Value::from(operation.clone()),
        ));
    }
    span.attributes
        .push(KeyValue::new("db.operation.name", Value::from(operation)));
    match target {
        Some(Target::Collection(name)) => span
            .attributes
            .push(KeyValue::new("db.collection.name", name)),
        Some(Target::Procedure(name)) => span
            .attributes
            .push(KeyValue::new("db.stored_procedure.name", name)),
        None => {}
    }
}

#[derive(Debug, PartialEq)]
enum Target {
    Collection(String),
    Procedure(String),
}

/// The table a statement reads or writes (the first after `FROM`, `INTO` or `UPDATE`), or the
/// function it calls in its place.
fn target_of(statement: &str) -> Option<Target> {
    let mut words = statement.split_whitespace();
    words.find(|word| {
        ["FROM", "INTO", "UPDATE"]
            .iter()
            .any(|keyword| word.eq_ignore_ascii_case(keyword))
    })?;
    let word = words.next()?;
    let (name, call) = match word.split_once('(') {
        Some((name, _)) => (name, true),
        None => (word, false),
    };
    let name = name.trim_matches(|c: char| c == '"' || c == '`' || c == ',' || c == ';');
    if name.is_empty() {
        return None;
    }
    Some(match call {
        true => Target::Procedure(name.to_owned()),
        false => Target::Collection(name.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(name: &str) -> Option<Target> {
        Some(Target::Collection(name.into()))
    }

    #[test]
    fn the_target_is_the_table_after_from_into_or_update() {
        let select = r#"SELECT "accounts"."id" FROM "accounts" WHERE "accounts"."id" = $1"#;
        assert_eq!(target_of(select), collection("accounts"));
        let insert = r#"INSERT INTO "transactions" ("acc_id") VALUES ($1)"#;
        assert_eq!(target_of(insert), collection("transactions"));
        let update = r#"UPDATE "holds" SET "status" = $1"#;
        assert_eq!(target_of(update), collection("holds"));
        assert_eq!(
            target_of("DELETE FROM login_failures"),
            collection("login_failures")
        );
        assert_eq!(
            target_of("SELECT * FROM bank_apply_group($1, $2)"),
            Some(Target::Procedure("bank_apply_group".into()))
        );
        assert_eq!(target_of("SELECT 1"), None);
    }

    fn statement_span(name: &'static str, attributes: Vec<KeyValue>) -> SpanData {
        use opentelemetry::{
            InstrumentationScope,
            trace::{SpanContext, SpanId, SpanKind, Status},
        };
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: name.into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    fn attribute(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|attribute| attribute.key.as_str() == key)
            .map(|attribute| attribute.value.as_str().into_owned())
    }

    #[test]
    fn a_statement_span_gets_the_stable_names() {
        let mut span = statement_span(
            "sea_orm.query_one",
            vec![
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("db.operation", "SELECT"),
                KeyValue::new(
                    "db.statement",
                    r#"SELECT * FROM "accounts" WHERE "id" = $1"#,
                ),
            ],
        );
        stabilize(&mut span);
        assert_eq!(span.name, "SELECT accounts");
        assert_eq!(
            attribute(&span, "db.system.name").as_deref(),
            Some("postgresql")
        );
        assert_eq!(
            attribute(&span, "db.operation.name").as_deref(),
            Some("SELECT")
        );
        assert_eq!(
            attribute(&span, "db.collection.name").as_deref(),
            Some("accounts")
        );
        assert!(attribute(&span, "db.query.text").is_some());
        for old in ["db.system", "db.statement", "db.operation"] {
            assert_eq!(attribute(&span, old), None, "{old}");
        }
    }

    #[test]
    fn a_transaction_boundary_is_named_by_itself_and_other_spans_are_left_alone() {
        let mut begin = statement_span("sea_orm.begin", vec![KeyValue::new("db.system", "sqlite")]);
        stabilize(&mut begin);
        assert_eq!(begin.name, "BEGIN");
        assert_eq!(
            attribute(&begin, "db.operation.name").as_deref(),
            Some("BEGIN")
        );
        assert_eq!(attribute(&begin, "db.query.text").as_deref(), Some("BEGIN"));
        let mut request = statement_span("GET /accounts", vec![KeyValue::new("url.path", "/")]);
        stabilize(&mut request);
        assert_eq!(request.name, "GET /accounts");
        assert_eq!(request.attributes.len(), 1);
    }
}
