//! Sending what is due: claim a batch with a lease, send each message once, settle each.

use std::time::Duration;

use bank_core::webhooks::{self, Due, Event, Failed, now_ms};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::join_all;
use reqwest::{Client, header};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{addresses::Allowed, signing};
use crate::{metrics::WebhookMetrics, telemetry};

/// How often an idle dispatcher looks for due messages.
const POLL: Duration = Duration::from_millis(250);
/// The most messages one pass sends at once.
const BATCH: u64 = 32;
/// How long an endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A claim outlives the slowest send, so no other replica takes the message meanwhile.
const LEASE_MS: i64 = 30_000;
/// The longest pause between attempts, whatever the schedule or `Retry-After` says.
const LONGEST_PAUSE_MS: i64 = 10 * 60 * 60 * 1000;
/// How often the outbox's gauges are read.
const GAUGES_EVERY: Duration = Duration::from_secs(1);
/// Delivered messages are kept this long, then forgotten.
const KEPT_MS: i64 = 3 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// An event's `data`, as the API would answer it.
pub type Render = fn(&Event) -> serde_json::Value;

/// When failed messages are sent again.
#[derive(Clone, Copy, Debug)]
pub struct Retries {
    /// The pause after the first failure, doubled after each one after it.
    pub first: Duration,
    /// How long an endpoint's deliveries may fail, none succeeding, before it is disabled.
    pub disable_after: Duration,
}

impl Retries {
    /// When to try again after `attempts` attempts, or later if the endpoint asked for that.
    fn next_attempt_ms(&self, now_ms: i64, attempts: i32, retry_after: Option<i64>) -> i64 {
        let first = i64::try_from(self.first.as_millis()).unwrap_or(LONGEST_PAUSE_MS);
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let scheduled = first.saturating_mul(1 << doublings);
        let asked = retry_after.unwrap_or(0).saturating_mul(1000);
        now_ms + scheduled.max(asked).min(LONGEST_PAUSE_MS)
    }
}

pub struct Dispatcher {
    db: DatabaseConnection,
    client: Client,
    allowed: Allowed,
    render: Render,
    retries: Retries,
    metrics: WebhookMetrics,
}

/// How one attempt went.
enum Sent {
    Delivered(u16),
    Failed {
        status: Option<u16>,
        retry_after: Option<i64>,
    },
}

impl Dispatcher {
    pub fn new(
        db: DatabaseConnection,
        allowed: Allowed,
        render: Render,
        retries: Retries,
        metrics: WebhookMetrics,
    ) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .dns_resolver(allowed.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(concat!("bank-api-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            db,
            client,
            allowed,
            render,
            retries,
            metrics,
        })
    }

    /// Sends due messages until the server stops; returns only when the database fails.
    pub async fn run(&self) -> Result<(), DbErr> {
        let mut pruned = Instant::now();
        let mut gauged: Option<Instant> = None;
        loop {
            let due = webhooks::claim(&self.db, now_ms(), LEASE_MS, BATCH).await?;
            let sent = join_all(due.iter().map(|due| {
                let span = delivery_span(due);
                self.send(due).instrument(span)
            }))
            .await;
            let mut delivered = Vec::new();
            for (due, sent) in due.iter().zip(sent) {
                match sent {
                    Sent::Delivered(status) => delivered.push((due, status)),
                    Sent::Failed {
                        status,
                        retry_after,
                    } => self.failed(due, status, retry_after).await?,
                }
            }
            if !delivered.is_empty() {
                webhooks::delivered(&self.db, &delivered, now_ms()).await?;
                for _ in &delivered {
                    self.metrics.count_delivery(true);
                }
            }
            if gauged.is_none_or(|at| at.elapsed() >= GAUGES_EVERY) {
                let backlog = webhooks::backlog(&self.db, now_ms()).await?;
                self.metrics.record_backlog(&backlog);
                gauged = Some(Instant::now());
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                webhooks::prune(&self.db, now_ms() - KEPT_MS).await?;
                pruned = Instant::now();
            }
            if (due.len() as u64) < BATCH {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    async fn send(&self, due: &Due) -> Sent {
        let failed = Sent::Failed {
            status: None,
            retry_after: None,
        };
        let id = format!("msg_{}", due.message.id);
        let timestamp = DateTime::<Utc>::from_timestamp_millis(due.message.created_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let body = serde_json::json!({
            "type": due.event_type.as_str(),
            "timestamp": timestamp,
            "data": (self.render)(&due.event),
        })
        .to_string();
        let now = Utc::now().timestamp();
        let Some(signature) = signing::sign(&due.endpoint.secret, &id, now, body.as_bytes()) else {
            log::error!(
                "webhook endpoint {} has a secret we cannot use",
                due.endpoint.id
            );
            return failed;
        };
        // A name is checked as it resolves; an address in the URL is checked here.
        let literal =
            reqwest::Url::parse(&due.endpoint.url)
                .ok()
                .and_then(|url| match url.host() {
                    Some(url::Host::Ipv4(ip)) => Some(ip.into()),
                    Some(url::Host::Ipv6(ip)) => Some(ip.into()),
                    _ => None,
                });
        if literal.is_some_and(|ip| !self.allowed.permits(ip)) {
            log::warn!(
                "webhook endpoint {} is in a private network",
                due.endpoint.id
            );
            return failed;
        }
        let started = Instant::now();
        let answer = self
            .client
            .post(&due.endpoint.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        self.metrics.observe_latency(started.elapsed());
        if let Ok(answer) = &answer {
            tracing::Span::current().record("http.response.status_code", answer.status().as_u16());
        } else {
            tracing::Span::current().record("error.type", "transport");
        }
        match answer {
            Ok(answer) if answer.status().is_success() => Sent::Delivered(answer.status().as_u16()),
            Ok(answer) => {
                let retry_after = answer
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<i64>().ok());
                log::warn!(
                    "webhook {id} to endpoint {} answered {}",
                    due.endpoint.id,
                    answer.status().as_u16()
                );
                Sent::Failed {
                    status: Some(answer.status().as_u16()),
                    retry_after,
                }
            }
            Err(error) => {
                log::warn!(
                    "webhook {id} to endpoint {} failed: {}",
                    due.endpoint.id,
                    error.without_url()
                );
                failed
            }
        }
    }

    /// Records a failed attempt: when to try again, and whether the endpoint is now disabled.
    async fn failed(
        &self,
        due: &Due,
        status: Option<u16>,
        retry_after: Option<i64>,
    ) -> Result<(), DbErr> {
        let now_ms = now_ms();
        let failed = Failed {
            status,
            now_ms,
            retry_at_ms: self
                .retries
                .next_attempt_ms(now_ms, due.message.attempts, retry_after),
            disable_after_ms: i64::try_from(self.retries.disable_after.as_millis())
                .unwrap_or(i64::MAX),
        };
        let disabled = webhooks::failed(&self.db, due, failed).await?;
        // Counted once recorded, as deliveries are: the count never runs ahead of the outbox.
        self.metrics.count_delivery(false);
        if disabled {
            log::warn!(
                "webhook endpoint {} disabled: its deliveries failed for {} s",
                due.endpoint.id,
                self.retries.disable_after.as_secs()
            );
            self.metrics.count_disabled();
        }
        Ok(())
    }
}

/// The span a delivery runs in: a client span of its own trace, linked to the span of the
/// request whose change the message tells of, so a trace leads from that request to each of its
/// webhooks and back. The URL is not recorded: it may carry a customer's token.
fn delivery_span(due: &Due) -> tracing::Span {
    let span = tracing::info_span!(
        "POST",
        otel.kind = "client",
        http.request.method = "POST",
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        "webhook.id" = format!("msg_{}", due.message.id),
        "webhook.event" = due.event_type.as_str(),
        "webhook.endpoint_id" = due.endpoint.id,
        "webhook.attempt" = due.message.attempts,
    );
    if let Some(request) = due
        .message
        .traceparent
        .as_deref()
        .and_then(telemetry::remote_context)
    {
        span.add_link(request);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_longest_and_honour_retry_after() {
        let retries = Retries {
            first: Duration::from_secs(5),
            disable_after: Duration::from_secs(3600),
        };
        assert_eq!(retries.next_attempt_ms(0, 1, None), 5_000);
        assert_eq!(retries.next_attempt_ms(0, 2, None), 10_000);
        assert_eq!(retries.next_attempt_ms(0, 4, None), 40_000);
        assert_eq!(retries.next_attempt_ms(0, 40, None), LONGEST_PAUSE_MS);
        assert_eq!(retries.next_attempt_ms(0, 1, Some(120)), 120_000);
        assert_eq!(
            retries.next_attempt_ms(0, 1, Some(i64::MAX)),
            LONGEST_PAUSE_MS
        );
    }
}
