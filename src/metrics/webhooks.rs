//! What the webhook dispatcher tells operators: deliveries by outcome and their latency, the
//! outbox's depth and the age of its oldest message, endpoints disabled for failing.

use std::time::Duration;

use bank_core::webhooks::Backlog;
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

/// Buckets from 5 ms to 10 s (the dispatcher's timeout).
const DELIVERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct WebhookMetrics {
    deliveries: IntCounterVec,
    latency: Histogram,
    waiting: IntGauge,
    oldest: Gauge,
    lag: Gauge,
    disabled: IntCounter,
}

impl WebhookMetrics {
    pub fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "bank_webhook_deliveries_total",
                    "Attempts to deliver a webhook, by outcome (delivered: the endpoint answered \
                     2xx; failed: anything else, to be retried).",
                ),
                &["outcome"],
            )?,
            latency: Histogram::with_opts(
                HistogramOpts::new(
                    "bank_webhook_delivery_seconds",
                    "How long endpoints took to answer a webhook, or to fail.",
                )
                .buckets(DELIVERY_BUCKETS.to_vec()),
            )?,
            waiting: IntGauge::new(
                "bank_outbox_messages_waiting",
                "Webhook messages of enabled endpoints not yet delivered, in the whole outbox \
                 (each replica reports the same total).",
            )?,
            oldest: Gauge::new(
                "bank_outbox_oldest_message_age_seconds",
                "How long the oldest undelivered webhook message of an enabled endpoint has \
                 waited; 0 when none waits.",
            )?,
            lag: Gauge::new(
                "bank_outbox_dispatch_lag_seconds",
                "How long the message due longest (new, or its retry's time come) has waited \
                 for a dispatcher to send it; 0 when none is due.",
            )?,
            disabled: IntCounter::new(
                "bank_webhook_endpoints_disabled_total",
                "Webhook endpoints disabled because their deliveries kept failing.",
            )?,
        };
        registry.register(Box::new(metrics.deliveries.clone()))?;
        registry.register(Box::new(metrics.latency.clone()))?;
        registry.register(Box::new(metrics.waiting.clone()))?;
        registry.register(Box::new(metrics.oldest.clone()))?;
        registry.register(Box::new(metrics.lag.clone()))?;
        registry.register(Box::new(metrics.disabled.clone()))?;
        for outcome in ["delivered", "failed"] {
            metrics.deliveries.with_label_values(&[outcome]);
        }
        Ok(metrics)
    }

    pub fn count_delivery(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.deliveries.with_label_values(&[outcome]).inc();
    }

    pub fn observe_latency(&self, took: Duration) {
        self.latency.observe(took.as_secs_f64());
    }

    pub fn record_backlog(&self, backlog: &Backlog) {
        self.waiting
            .set(i64::try_from(backlog.waiting).unwrap_or(i64::MAX));
        self.oldest
            .set(backlog.oldest_ms.unwrap_or(0) as f64 / 1000.0);
        self.lag.set(backlog.due_ms.unwrap_or(0) as f64 / 1000.0);
    }

    pub fn count_disabled(&self) {
        self.disabled.inc();
    }
}
