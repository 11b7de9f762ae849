//! Traces over OTLP/gRPC: the tracer provider built from `config::Tracing`, and the `tracing`
//! subscriber that turns the request spans and SeaORM's statement spans into OpenTelemetry spans.

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler as SdkSampler, SdkTracerProvider},
};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{
    Layer,
    filter::{self, FilterExt, Targets},
    layer::SubscriberExt,
};

use super::conventions::StableConventions;
use crate::config::{Sampler, Tracing};

#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] tracing::subscriber::SetGlobalDefaultError),
}

/// The running trace pipeline, or nothing when traces are off.
#[must_use = "spans still queued are lost unless `shutdown` is called"]
pub struct Traces(Option<SdkTracerProvider>);

impl Traces {
    pub fn start(settings: Option<&Tracing>) -> Result<Self, TracesError> {
        let Some(settings) = settings else {
            return Ok(Self(None));
        };
        let exporter = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&settings.endpoint)
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(StableConventions(exporter))
            .with_sampler(sdk_sampler(settings.sampler))
            .with_resource(
                Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        let spans = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bank-api"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            // Only our request spans, the ledger's group spans and SeaORM's statement spans. The
            // exporter's own gRPC client (tonic, hyper, h2) has spans too; traced, every export
            // would make more to export.
            .with_filter(
                Targets::new()
                    .with_target("bank_api", LevelFilter::INFO)
                    .with_target("bank_core", LevelFilter::INFO)
                    .with_target("sea_orm", LevelFilter::INFO)
                    // A statement outside any span is background polling (the hold sweeper, the
                    // webhook dispatcher looking for work): a trace of its own several times a
                    // second per replica would bury the requests' traces.
                    .and(filter::dynamic_filter_fn(|metadata, context| {
                        !metadata.target().starts_with("sea_orm")
                            || context.lookup_current().is_some()
                    })),
            );
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans))?;
        global::set_text_map_propagator(TraceContextPropagator::new());
        log::info!(
            "exporting traces to {} as service {:?}",
            settings.endpoint,
            settings.service_name
        );
        Ok(Self(Some(provider)))
    }

    /// Sends the spans still queued and stops the exporter. The wait runs off the async worker:
    /// the gRPC client that does the sending needs that worker free to make progress.
    pub async fn shutdown(self) {
        let Some(provider) = self.0 else {
            return;
        };
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => log::warn!("traces not all sent at shutdown: {error}"),
            Err(error) => log::warn!("traces not all sent at shutdown: {error}"),
        }
    }
}

fn sdk_sampler(sampler: Sampler) -> SdkSampler {
    let root = if sampler.ratio >= 1.0 {
        SdkSampler::AlwaysOn
    } else if sampler.ratio <= 0.0 {
        SdkSampler::AlwaysOff
    } else {
        SdkSampler::TraceIdRatioBased(sampler.ratio)
    };
    if sampler.parent_based {
        SdkSampler::ParentBased(Box::new(root))
    } else {
        root
    }
}
