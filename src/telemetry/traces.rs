//! Traces over OTLP/gRPC: the tracer provider built from `config::Tracing`, and the `tracing`
//! subscriber that turns the request spans and SeaORM's statement spans into OpenTelemetry spans.

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler as SdkSampler, SdkTracerProvider},
};
use tracing::{Level, Metadata, Subscriber, subscriber::Interest};
use tracing_subscriber::{Layer, filter, layer::SubscriberExt, registry::LookupSpan};

use super::{conventions::StableConventions, sampling::DecidedAtArrival};
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
            .with_sampler(DecidedAtArrival::new(sdk_sampler(settings.sampler)))
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
            // Nothing here reads OpenTelemetry's current context: activating it on every poll
            // of every request would be work for no reader.
            .with_context_activation(false);
        // One filter for every layer and none of a layer's own: a layer's own filter is asked
        // about a span each time it is entered or left.
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry()
                .with(which_spans())
                .with(spans),
        )?;
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

/// Which spans are made at all, for every layer. This crate's (traced requests and webhook
/// deliveries) always. The exporter's own gRPC client (tonic, hyper, h2) has spans too; traced,
/// every export would make more to export. The ledger's groups and SeaORM's statements only
/// inside a span, which only a traced request has: outside any, a statement is background
/// polling (the hold sweeper, the webhook dispatcher looking for work), a trace of its own
/// several times a second per replica that would bury the requests' traces, or it belongs to an
/// untraced request, whose trace the sampler dropped, and building it (its SQL text copied)
/// would cost that request for nothing. A filter for every layer, not one layer's own: a span
/// one layer's filter refuses is still made when the filter decides span by span.
fn which_spans<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn ours(metadata: &Metadata) -> bool {
        metadata.target().starts_with("bank_api")
    }
    fn inner(metadata: &Metadata) -> bool {
        ["bank_core", "sea_orm"]
            .iter()
            .any(|target| metadata.target().starts_with(target))
    }
    filter::dynamic_filter_fn(|metadata, context| {
        *metadata.level() <= Level::INFO && (ours(metadata) || context.lookup_current().is_some())
    })
    .with_callsite_filter(|metadata| {
        if ours(metadata) || inner(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    })
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
