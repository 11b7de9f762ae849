//! Per-client request limits (OWASP API4:2023, unrestricted resource consumption). A client is
//! the user a valid bearer token names, or else its address (through `TRUSTED_PROXIES`, an IPv6
//! address by its /64, the block one subscriber gets). Each client may send `per_second`
//! requests a second, in bursts of as many; governor's GCRA keeps the count.
//!
//! Every answer says where the client stands in the IETF draft's fields (`RateLimit-Policy` and
//! `RateLimit`); an answer over the limit is 429 with `Retry-After`. The limits are each
//! replica's own: behind a load balancer spreading a client over N replicas, it may send up to N
//! times as much (the `ha` profile's HAProxy holds a global limit per address).

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use actix_web::{
    Error, HttpMessage,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    web::Data,
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use crate::{
    background::TaskError,
    error::{Answer, OverRequestLimit},
    extract::{ClientAddress, VerifiedToken, bearer},
    state::AppState,
};

/// The policy's name in both fields.
const POLICY: &str = "per-client";
const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// Probes and scrapes come from the platform, not from clients, and must never be turned away.
pub const UNLIMITED_PATHS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// Who a limit counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Client {
    User(i64),
    Address(IpAddr),
}

impl Client {
    fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Address(_) => "address",
        }
    }
}

type Limiter =
    RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock, StateInformationMiddleware>;

/// Each client's count, shared by every worker of this process.
pub struct RateLimits {
    limiter: Limiter,
    per_second: u32,
    policy: HeaderValue,
}

impl RateLimits {
    pub fn new(per_second: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second);
        let policy = format!("\"{POLICY}\";q={per_second};w=1");
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_second: per_second.get(),
            policy: HeaderValue::from_str(&policy).expect("a policy is ASCII"),
        }
    }

    /// Forgets the clients whose count is back to full, so that addresses seen once do not stay
    /// in memory.
    pub async fn keep_forgetting(&self, period: Duration) -> Result<(), TaskError> {
        loop {
            tokio::time::sleep(period).await;
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    /// Counts one request of `client`: `Ok` with what it has left, or `Err` with how long until
    /// it may send again.
    fn check(&self, client: &Client) -> Result<u32, Duration> {
        self.limiter
            .check_key(client)
            .map(|snapshot| snapshot.remaining_burst_capacity())
            .map_err(|refused| refused.wait_time_from(self.limiter.clock().now()))
    }

    /// The draft's fields: the policy, what is left and the whole seconds until the count is full.
    fn describe(&self, headers: &mut HeaderMap, remaining: u32, reset: u64) {
        let state = format!("\"{POLICY}\";r={remaining};t={reset}");
        headers.insert(RATE_LIMIT_POLICY, self.policy.clone());
        headers.insert(
            RATE_LIMIT,
            HeaderValue::from_str(&state).expect("numbers are ASCII"),
        );
    }
}

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let state = req.app_data::<Data<AppState>>().cloned();
    // Counted when limits are on, the path is not a probe's, and the client can be told.
    let counted = state.as_ref().and_then(|state| {
        let limits = state.rate_limits.as_ref()?;
        if UNLIMITED_PATHS.contains(&req.path()) {
            return None;
        }
        Some((state, limits, client(state, &req)?))
    });
    let Some((state, limits, client)) = counted else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    match limits.check(&client) {
        Ok(remaining) => {
            let mut res = next.call(req).await?;
            // A second's quota refills within a second.
            let reset = u64::from(remaining < limits.per_second);
            limits.describe(res.headers_mut(), remaining, reset);
            Ok(res.map_into_left_body())
        }
        Err(wait) => {
            state.metrics.count_throttled(client.kind());
            let refused = OverRequestLimit {
                per_second: limits.per_second,
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            };
            let mut res = refused.respond();
            limits.describe(res.headers_mut(), 0, refused.retry_after);
            Ok(req.into_response(res).map_into_right_body())
        }
    }
}

/// The user of a valid bearer token (verified once here, for the route too), else the address.
fn client(state: &AppState, req: &ServiceRequest) -> Option<Client> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()));
    if let (Some(token), true) = (token, state.auth.required) {
        let verified = state.auth.tokens.verify(token);
        req.extensions_mut().insert(VerifiedToken(verified));
        if let Ok(user) = verified {
            return Some(Client::User(user.0));
        }
    }
    ClientAddress::of(req.request()).0.map(subscriber)
}

/// An IPv6 client by its /64: one subscriber has a whole /64 to pick addresses from.
fn subscriber(address: IpAddr) -> Client {
    match address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            Client::Address(IpAddr::V6(bits.into()))
        }
        other => Client::Address(other.to_canonical()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let a = subscriber("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = subscriber("2001:db8:1:2:bbbb::9".parse().unwrap());
        let other = subscriber("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
    }

    #[test]
    fn an_ipv4_client_is_its_address_however_written() {
        let mapped = subscriber("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped, subscriber("192.0.2.7".parse().unwrap()));
        assert_ne!(mapped, subscriber("192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn a_client_over_its_limit_waits_while_another_is_served() {
        let limits = RateLimits::new(NonZeroU32::new(3).unwrap());
        let busy = Client::User(1);
        let remaining: Vec<_> = (0..3).map(|_| limits.check(&busy)).collect();
        assert_eq!(remaining, vec![Ok(2), Ok(1), Ok(0)]);
        let wait = limits
            .check(&busy)
            .expect_err("the fourth is over the limit");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(334));
        assert_eq!(limits.check(&Client::User(2)), Ok(2));
    }
}
