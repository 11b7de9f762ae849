//! Where webhooks may go: public addresses, and private ones only in the networks an operator
//! allows (`WEBHOOK_ALLOWED_NETWORKS`). Otherwise a customer could make the server call its own
//! neighbours (server-side request forgery): the database, the metadata service, an admin port.
//! A URL is checked when it is registered, and every connection is checked again as it is made,
//! so a name that later resolves somewhere private reaches nothing.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// Networks no webhook reaches unless allowed: this host, private and shared networks,
/// link-local, and addresses that are not one host's.
const PRIVATE: [&str; 14] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Why a URL is refused, in words a client may read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("must be an http or https URL with a host")]
    NotHttp,
    #[error("must not carry a username or password")]
    Credentials,
    #[error("must name a host that resolves")]
    Unresolved,
    #[error("must reach a public address")]
    Private,
}

/// The private networks an operator allows webhooks into.
#[derive(Clone, Debug, Default)]
pub struct Allowed(Arc<Vec<IpNet>>);

impl Allowed {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(Arc::new(networks))
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let private = PRIVATE
            .iter()
            .filter_map(|network| network.parse::<IpNet>().ok())
            .any(|network| network.contains(&ip));
        !private || self.0.iter().any(|network| network.contains(&ip))
    }

    /// `url`, if webhooks may be sent to it: every address its host resolves to is permitted.
    pub async fn check(&self, url: &str) -> Result<Url, Refused> {
        let url = Url::parse(url).map_err(|_| Refused::NotHttp)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Refused::NotHttp);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        let addresses = self.addresses(&url).await?;
        if addresses.iter().all(|address| self.permits(address.ip())) {
            Ok(url)
        } else {
            Err(Refused::Private)
        }
    }

    async fn addresses(&self, url: &Url) -> Result<Vec<SocketAddr>, Refused> {
        let port = url.port_or_known_default().ok_or(Refused::NotHttp)?;
        let addresses: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| Refused::Unresolved)?
                .collect(),
            None => return Err(Refused::NotHttp),
        };
        if addresses.is_empty() {
            return Err(Refused::Unresolved);
        }
        Ok(addresses)
    }
}

/// The dispatcher's resolver: a name's permitted addresses, or an error if it has none.
impl Resolve for Allowed {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found
                .filter(|address| allowed.permits(address.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(Refused::Private.into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_addresses_need_the_operator_s_leave() {
        let none = Allowed::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://[::ffff:192.168.1.1]/",
            "http://localhost:8080/",
        ] {
            assert_eq!(none.check(url).await, Err(Refused::Private), "{url}");
        }
        assert!(none.check("https://93.184.215.14/hook").await.is_ok());
        let loopback = Allowed::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(loopback.check("http://127.0.0.1:9/hook").await.is_ok());
        assert_eq!(
            loopback.check("http://10.1.2.3/").await,
            Err(Refused::Private)
        );
    }

    #[tokio::test]
    async fn only_http_urls_without_credentials() {
        let none = Allowed::default();
        assert_eq!(
            none.check("ftp://93.184.215.14/").await,
            Err(Refused::NotHttp)
        );
        assert_eq!(none.check("not a url").await, Err(Refused::NotHttp));
        assert_eq!(
            none.check("https://user:pw@93.184.215.14/").await,
            Err(Refused::Credentials)
        );
    }
}
