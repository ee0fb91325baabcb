//! A cluster's balancer: a policy compiled against one set of endpoints.

use rand::Rng;

use super::{
    BalanceError, HashPolicy, LbPolicy, Maglev, RoundRobin, pick_least_request, pick_random,
};
use crate::model::{Endpoint, RequestInfo};

/// Picks endpoints of one cluster (or subset) by its [`LbPolicy`].
///
/// Built once per endpoint update, shared by all requests through `&self`. When endpoints
/// change, build a new one: Maglev tables are computed from the endpoint set.
#[derive(Debug)]
pub struct Balancer {
    endpoints: Vec<Endpoint>,
    algorithm: Algorithm,
}

#[derive(Debug)]
enum Algorithm {
    RoundRobin(RoundRobin),
    LeastRequest,
    Random,
    ConsistentHash { key: HashPolicy, table: Maglev },
}

impl Balancer {
    pub fn new(policy: &LbPolicy, endpoints: Vec<Endpoint>) -> Result<Self, BalanceError> {
        let algorithm = match policy {
            LbPolicy::RoundRobin => Algorithm::RoundRobin(RoundRobin::new()),
            LbPolicy::LeastRequest => Algorithm::LeastRequest,
            LbPolicy::Random => Algorithm::Random,
            LbPolicy::ConsistentHash(hash) => Algorithm::ConsistentHash {
                key: hash.key.clone(),
                table: Maglev::new(&endpoints, hash.table_size)?,
            },
        };
        Ok(Self {
            endpoints,
            algorithm,
        })
    }

    /// Starts round robin at `offset` (see [`RoundRobin::starting_at`]); other policies
    /// ignore it.
    pub fn with_round_robin_start(mut self, offset: usize) -> Self {
        if let Algorithm::RoundRobin(_) = self.algorithm {
            self.algorithm = Algorithm::RoundRobin(RoundRobin::starting_at(offset));
        }
        self
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The index (into [`Balancer::endpoints`]) of the endpoint for `req`, or `None` if there
    /// are no endpoints. `load(index)` is an endpoint's requests in flight, read only by
    /// least request. A consistent-hash policy whose key the request lacks picks at random.
    pub fn pick<R, L>(&self, req: &RequestInfo, load: L, rng: &mut R) -> Option<usize>
    where
        R: Rng + ?Sized,
        L: Fn(usize) -> u32,
    {
        match &self.algorithm {
            Algorithm::RoundRobin(rr) => rr.pick(self.endpoints.len()),
            Algorithm::LeastRequest => pick_least_request(self.endpoints.len(), load, rng),
            Algorithm::Random => pick_random(&self.endpoints, rng),
            Algorithm::ConsistentHash { key, table } => key
                .key(req)
                .and_then(|key| table.pick(key))
                .or_else(|| pick_random(&self.endpoints, rng)),
        }
    }
}
