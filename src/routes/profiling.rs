//! `GET /debug/pprof/profile`: where this process spends its CPU, sampled for a few seconds, for
//! operators, on a server started with `PROFILING=true`. Go's path and Go's format, so
//! `go tool pprof`, Pyroscope and Grafana read it as they read a Go service's.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, http::header, web};
use utoipa::IntoParams;

use crate::{
    error::{FieldError, Internal, Invalid, Loc, OperatorsOnly, ProfileRunning, failures},
    extract::{Authenticated, CallerRejected, QueryPairs},
    profiling::{Sampling, SamplingError},
};

const DEFAULT_SECONDS: u64 = 10;
const MAX_SECONDS: u64 = 60;

failures! {
    /// Why no profile was answered.
    pub enum ProfileAnswer {
        Caller(CallerRejected),
        Forbidden(OperatorsOnly),
        Invalid(Invalid),
        Running(ProfileRunning),
        Failed(Internal),
    }
}

/// `?seconds=&format=`: how long to sample and how to answer.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// How long to sample, in seconds.
    #[param(minimum = 1, maximum = 60, default = 10, required = false)]
    seconds: u64,
    /// `pprof` (protobuf, as Go serves it) or `svg` (a flame graph for a browser).
    #[param(
        pattern = "^(pprof|svg)$",
        max_length = 5,
        default = "pprof",
        required = false
    )]
    format: String,
}

impl ProfileQuery {
    fn parse(query: &str) -> Result<Self, Invalid> {
        let pairs = QueryPairs::parse(query);
        let value = |name: &str| pairs.last(name);
        let mut problems = Vec::new();
        let seconds = match value("seconds").map(str::parse::<u64>) {
            None => DEFAULT_SECONDS,
            Some(Ok(seconds)) if (1..=MAX_SECONDS).contains(&seconds) => seconds,
            Some(Ok(_)) => {
                let words = format!("Input should be between 1 and {MAX_SECONDS}");
                problems.push(FieldError::new(Loc::Query("seconds"), words, "range"));
                DEFAULT_SECONDS
            }
            Some(Err(_)) => {
                problems.push(FieldError::not_an_integer(Loc::Query("seconds")));
                DEFAULT_SECONDS
            }
        };
        let format = match value("format") {
            None => "pprof",
            Some(format @ ("pprof" | "svg")) => format,
            Some(_) => {
                let words = "Input should be 'pprof' or 'svg'";
                problems.push(FieldError::new(Loc::Query("format"), words, "enum"));
                "pprof"
            }
        };
        if problems.is_empty() {
            Ok(Self {
                seconds,
                format: format.to_owned(),
            })
        } else {
            Err(Invalid(problems))
        }
    }
}

/// CPU profile (operators)
///
/// Samples every thread's stack 99 times a second for `seconds` and answers the profile: pprof's
/// protobuf (`go tool pprof`, Pyroscope and Grafana read it) or, with `format=svg`, a flame graph.
/// Served only with `PROFILING=true`, to operators only; one profile at a time. Sampling costs
/// the process a little CPU while it runs, and nothing otherwise.
#[utoipa::path(
    tag = "diagnostics",
    params(ProfileQuery),
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The profile", content(
            (Vec<u8> = "application/octet-stream"),
            (String = "image/svg+xml"),
        )),
        ProfileAnswer,
    )
)]
#[get("/debug/pprof/profile")]
pub async fn profile(
    Authenticated(caller): Authenticated,
    request: HttpRequest,
) -> Result<HttpResponse, ProfileAnswer> {
    if !caller.is_operator() {
        return Err(OperatorsOnly.into());
    }
    let asked = ProfileQuery::parse(request.query_string())?;
    let svg = asked.format == "svg";
    // Its access line is a debug one, as the probes' are (`UNMEASURED_ROUTES`): this is the record.
    log::info!("CPU profile of {} s asked for", asked.seconds);
    let sampling = Sampling::start().map_err(|error| match error {
        SamplingError::Running => ProfileRunning.into(),
        other => ProfileAnswer::Failed(Internal(Box::new(other))),
    })?;
    tokio::time::sleep(Duration::from_secs(asked.seconds)).await;
    // Resolving the symbols of every sampled frame takes a while: off the request workers.
    let body = web::block(move || {
        let sampled = sampling.finish()?;
        if svg {
            sampled.flame_graph()
        } else {
            Ok(sampled.pprof())
        }
    })
    .await
    .map_err(|error| Internal(Box::new(error)))?
    .map_err(|error| Internal(Box::new(error)))?;
    if svg {
        return Ok(HttpResponse::Ok().content_type("image/svg+xml").body(body));
    }
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"profile.pb\"",
        ))
        .body(body))
}
