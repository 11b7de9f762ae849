//! The `/metrics` text, in OpenMetrics (which carries exemplars) or the classic Prometheus text
//! format, whichever the scraper asks for.
//!
//! Two libraries hold our metrics. actix-web-prom, the business counters and the process metrics
//! live in the `prometheus` crate, which cannot write exemplars; the request latency histogram
//! lives in `prometheus-client`, which can. prometheus-client writes the whole exposition: the
//! `PrometheusCrate` collector hands it the other library's families at scrape time.

use std::fmt;

use prometheus::proto::{self, MetricFamily};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet},
    metrics::{MetricType, exemplar::Exemplar},
    registry::Registry,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Prometheus,
}

impl Format {
    /// Prometheus lists `application/openmetrics-text` in its `Accept` header; browsers, curl and
    /// older scrapers get the classic format.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

pub fn encode(registry: &Registry, format: Format) -> Result<String, fmt::Error> {
    let mut text = String::new();
    match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, registry)?,
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?
        }
    }
    Ok(text)
}

/// The `prometheus` crate's families, read at every scrape: from our registry, and from the
/// crate's default registry, where it keeps the process metrics.
#[derive(Debug)]
pub struct PrometheusCrate {
    pub registry: prometheus::Registry,
    /// A family recorded but not exported (see `Metrics::http_middleware`).
    pub hidden: &'static str,
}

impl Collector for PrometheusCrate {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut families = self.registry.gather();
        families.extend(prometheus::gather());
        families
            .iter()
            .filter(|family| family.name() != self.hidden)
            .try_for_each(|family| encode_family(&mut encoder, family))
    }
}

fn encode_family(encoder: &mut DescriptorEncoder, family: &MetricFamily) -> fmt::Result {
    let name = family.name();
    let kind = match family.get_field_type() {
        proto::MetricType::COUNTER => MetricType::Counter,
        proto::MetricType::GAUGE => MetricType::Gauge,
        proto::MetricType::HISTOGRAM => MetricType::Histogram,
        // Neither library nor this service makes summaries or untyped metrics.
        _ => return Ok(()),
    };
    // Both of prometheus-client's formats append `_total` to a counter's name themselves.
    let name = match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    let mut metric_encoder = encoder.encode_descriptor(name, family.help(), None, kind)?;
    for metric in family.get_metric() {
        let labels: Vec<(&str, &str)> = metric
            .get_label()
            .iter()
            .map(|label| (label.name(), label.value()))
            .collect();
        let mut sample = metric_encoder.encode_family(&labels)?;
        match kind {
            MetricType::Counter => sample.encode_counter::<NoLabelSet, _, f64>(
                &metric.get_counter().value(),
                None::<&Exemplar<NoLabelSet, f64>>,
            )?,
            MetricType::Gauge => sample.encode_gauge(&metric.get_gauge().value())?,
            _ => encode_histogram(&mut sample, metric.get_histogram())?,
        }
    }
    Ok(())
}

/// The `prometheus` crate keeps cumulative bucket counts without `+Inf`; prometheus-client wants
/// each bucket's own count, `+Inf` included.
fn encode_histogram(sample: &mut MetricEncoder, histogram: &proto::Histogram) -> fmt::Result {
    let count = histogram.get_sample_count();
    let mut below = 0;
    let mut buckets: Vec<(f64, u64)> = histogram
        .get_bucket()
        .iter()
        .map(|bucket| {
            let cumulative = bucket.cumulative_count();
            let own = cumulative.saturating_sub(below);
            below = cumulative;
            (bucket.upper_bound(), own)
        })
        .collect();
    buckets.push((f64::INFINITY, count.saturating_sub(below)));
    sample.encode_histogram::<NoLabelSet>(histogram.get_sample_sum(), count, &buckets, None)
}
