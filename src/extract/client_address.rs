//! The client's address, as login and request limits count it. It is the connection's peer, unless the peer
//! is one of `TRUSTED_PROXIES`: then it is the right-most address in `X-Forwarded-For` that is not
//! a trusted proxy, since each proxy appends the address it heard from and only the entries added
//! by trusted proxies can be believed. Without trusted proxies the header is ignored, so a client
//! cannot write its way out of a limit.

use std::{
    future::{Ready, ready},
    net::IpAddr,
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web::Data};
use ipnet::IpNet;

use crate::state::AppState;

const FORWARDED_FOR: &str = "x-forwarded-for";

pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequest for ClientAddress {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

impl ClientAddress {
    /// For middleware, which sees the request before any extractor does.
    pub fn of(req: &HttpRequest) -> Self {
        let trusted = req
            .app_data::<Data<AppState>>()
            .map(|state| state.trusted_proxies.as_slice())
            .unwrap_or_default();
        let forwarded = req
            .headers()
            .get_all(FORWARDED_FOR)
            .filter_map(|value| value.to_str().ok());
        let peer = req.peer_addr().map(|address| address.ip());
        Self(peer.map(|peer| client(peer, forwarded, trusted)))
    }
}

/// Walks back from the peer through the hops the trusted proxies recorded, and stops at the
/// first hop that is not one of them. A hop that is not an address ends the walk at the last
/// trusted proxy: what lies before it cannot be believed either.
fn client<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match hop.trim().parse() {
            Ok(address) => client = address,
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn of(peer: &str, headers: &[&str], trusted: &[&str]) -> IpAddr {
        let trusted: Vec<IpNet> = trusted.iter().map(|net| net.parse().unwrap()).collect();
        client(ip(peer), headers.iter().copied(), &trusted)
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(of("203.0.113.9", &["198.51.100.1"], &[]), ip("203.0.113.9"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(
            of("203.0.113.9", &["10.1.1.1"], &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8"];
        // The client wrote 198.51.100.1 itself; the proxy appended the address it heard from.
        let header = ["198.51.100.1, 203.0.113.9"];
        assert_eq!(of("10.0.0.2", &header, &trusted), ip("203.0.113.9"));
        // Two trusted proxies in a row, and the header split over two lines.
        let headers = ["198.51.100.1, 203.0.113.9", "10.0.0.3"];
        assert_eq!(of("10.0.0.2", &headers, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn a_hop_that_is_not_an_address_stops_at_the_last_trusted_proxy() {
        let trusted = ["10.0.0.0/8", "::1/128"];
        assert_eq!(
            of("10.0.0.2", &["203.0.113.9, junk"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(of("::1", &[""], &trusted), ip("::1"));
    }

    #[test]
    fn when_every_hop_is_trusted_the_first_is_the_client() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(
            of("10.0.0.2", &["10.0.0.7, 10.0.0.3"], &trusted),
            ip("10.0.0.7")
        );
    }
}
