//! Optional per-client-IP rate limiting, with `governor`'s keyed GCRA limiter.
//!
//! Off by default (`http.rate_limit_per_sec = 0`). When on, each client IP may make
//! `rate_limit_burst` requests at once and then `rate_limit_per_sec` per second; beyond that it
//! gets 429 with the JSON error and `Retry-After`. The client IP is the TCP peer: behind a
//! reverse proxy every client shares the proxy's address, so limit there instead.
//!
//! **Client keys.** Limits count per [`client_key`], not per raw address: an IPv4 address is
//! its own key, but an IPv6 client is keyed by its /64. One host (or one home network) is
//! normally given a whole /64 and can pick any of its 2^64 addresses at will, so per-address
//! keys would be evaded by changing address on every request. An IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`, what a dual-stack listener reports for an IPv4 client) is keyed as the
//! IPv4 address. The per-IP stream cap ([`crate::sse`]) uses the same keys.
//!
//! **Bounded state.** The limiter keeps one small entry per IP it has seen. An entry whose
//! bucket has refilled is indistinguishable from a fresh one, and [`RateLimit::prune`] drops
//! those (`retain_recent`); the server calls it every [`PRUNE_EVERY`]. So the map holds only
//! IPs seen within one refill time (burst ÷ rate), whatever the number of addresses over time.
//!
//! Health, readiness and metrics are never limited: probes and scrapers must not be refused
//! because a client on the same address is busy. Which routes are spared is a column of the
//! route table (`crate::app::ROUTES`), handed to the middleware as a [`Limiter`]; this module
//! names no route.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::AppError;

/// How often the server drops entries of IPs that have been quiet for a refill time.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// The key a client's limits are counted under: an IPv4 address itself (also when it comes
/// IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address's /64 network (the low 64 bits zeroed).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// What the middleware needs from a keyed limiter, whatever its clock.
trait KeyedLimiter: Send + Sync {
    /// `Err(wait)` when the key must wait before its next request.
    fn check(&self, ip: IpAddr) -> Result<(), Duration>;
    fn prune(&self);
    fn len(&self) -> usize;
}

/// A keyed limiter on client IPs with clock `C`.
type IpLimiter<C> =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

impl<C> KeyedLimiter for IpLimiter<C>
where
    C: Clock + Send + Sync,
{
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_key(&ip)
            .map(|_| ())
            .map_err(|not_until| not_until.wait_time_from(self.clock().now()))
    }

    fn prune(&self) {
        self.retain_recent();
        self.shrink_to_fit();
    }

    fn len(&self) -> usize {
        RateLimiter::len(self)
    }
}

/// A shared per-IP rate limiter.
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<dyn KeyedLimiter>,
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("tracked_ips", &self.limiter.len())
            .finish()
    }
}

impl RateLimit {
    /// `per_sec` requests per second after a burst of `burst`; `None` when `per_sec` is 0.
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        Self::with_clock(per_sec, burst, DefaultClock::default())
    }

    /// The same with another clock (tests use `governor::clock::FakeRelativeClock`).
    pub fn with_clock<C>(per_sec: u32, burst: u32, clock: C) -> Option<Self>
    where
        C: Clock + Send + Sync + 'static,
    {
        let per_sec = NonZeroU32::new(per_sec)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
        let quota = Quota::per_second(per_sec).allow_burst(burst);
        let limiter: IpLimiter<C> = RateLimiter::dashmap_with_clock(quota, clock);
        Some(RateLimit {
            limiter: Arc::new(limiter),
        })
    }

    /// `Err(wait)` if `ip`'s client key ([`client_key`]) is over its rate.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter.check(client_key(ip))
    }

    /// Drops the entries of IPs whose bucket has refilled, and frees their memory.
    pub fn prune(&self) {
        self.limiter.prune();
    }

    /// Client keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }

    /// The middleware's state: this limit, applied to every route but the `exempt` templates.
    pub fn sparing(&self, exempt: impl IntoIterator<Item = &'static str>) -> Limiter {
        Limiter {
            limit: self.clone(),
            exempt: exempt.into_iter().collect(),
        }
    }
}

/// A rate limit and the route templates it spares: the state of [`limit`].
#[derive(Debug, Clone)]
pub struct Limiter {
    limit: RateLimit,
    exempt: Arc<[&'static str]>,
}

/// Middleware: 429 for a client IP over its rate, on every route but the exempt ones.
pub async fn limit(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let exempt = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| limiter.exempt.contains(&p.as_str()));
    if !exempt {
        let ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if let Err(retry_after) = limiter.limit.check(ip) {
            return AppError::TooManyRequests { retry_after }.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_burst_then_the_rate_per_ip() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(2, 3, clock.clone()).expect("on");
        for _ in 0..3 {
            assert_eq!(limit.check(ip(1)), Ok(()));
        }
        assert_eq!(limit.check(ip(1)), Err(Duration::from_millis(500)));
        assert_eq!(limit.check(ip(2)), Ok(()), "another IP has its own bucket");
        clock.advance(Duration::from_millis(500));
        assert_eq!(limit.check(ip(1)), Ok(()));
        assert!(limit.check(ip(1)).is_err());
        assert!(RateLimit::new(0, 10).is_none(), "0 = off");
    }

    #[test]
    fn state_is_bounded_by_pruning_refilled_entries() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(10, 20, clock.clone()).expect("on");
        for n in 0..10_000 {
            assert_eq!(limit.check(ip(n)), Ok(()));
        }
        assert_eq!(limit.tracked(), 10_000);
        limit.prune();
        assert_eq!(limit.tracked(), 10_000, "not refilled yet");
        // Refill time: burst ÷ rate = 2 s.
        clock.advance(Duration::from_secs(2));
        assert_eq!(limit.check(ip(0)), Ok(()));
        limit.prune();
        assert_eq!(limit.tracked(), 1, "only the IP seen since");
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().expect("an IPv6 address")
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        // The /64 computed independently: the first four groups, the rest zero.
        assert_eq!(
            client_key(v6("2001:db8:aaaa:bbbb:1:2:3:4")),
            v6("2001:db8:aaaa:bbbb::")
        );
        assert_eq!(
            client_key(v6("2001:db8:aaaa:bbbb:ffff:ffff:ffff:ffff")),
            v6("2001:db8:aaaa:bbbb::")
        );
        assert_ne!(
            client_key(v6("2001:db8:aaaa:bbbb::1")),
            client_key(v6("2001:db8:aaaa:bbbc::1")),
            "the neighbouring /64 is another client"
        );
        assert_eq!(client_key(v6("::1")), v6("::"));
        assert_eq!(client_key(ip(7)), ip(7), "IPv4 stays per address");
        assert_ne!(client_key(ip(7)), client_key(ip(8)));
        assert_eq!(
            client_key(v6("::ffff:10.0.0.7")),
            ip(7),
            "IPv4-mapped counts as its IPv4 address"
        );
        // IPv4-compatible (deprecated, ::a.b.c.d) is not mapped: it is an IPv6 address.
        assert_eq!(client_key(v6("::10.0.0.7")), v6("::"));
    }

    #[test]
    fn two_addresses_of_one_64_share_a_bucket() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(1, 2, clock.clone()).expect("on");
        assert_eq!(limit.check(v6("2001:db8:1:2::1")), Ok(()));
        assert_eq!(limit.check(v6("2001:db8:1:2:ffff::9")), Ok(()));
        assert_eq!(
            limit.check(v6("2001:db8:1:2:1234:5678:9abc:def0")),
            Err(Duration::from_secs(1)),
            "a third address of the same /64 finds the bucket empty"
        );
        assert_eq!(
            limit.check(v6("2001:db8:1:3::1")),
            Ok(()),
            "another /64 has its own bucket"
        );
        assert_eq!(limit.tracked(), 2);
        // IPv4, plain and mapped, share one bucket.
        assert_eq!(limit.check(ip(5)), Ok(()));
        assert_eq!(limit.check(v6("::ffff:10.0.0.5")), Ok(()));
        assert!(limit.check(ip(5)).is_err());
        clock.advance(Duration::from_secs(1));
        assert_eq!(limit.check(v6("2001:db8:1:2::77")), Ok(()), "refilled");
    }
}
