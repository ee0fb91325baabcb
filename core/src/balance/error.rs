//! Why a balancer could not be built.

/// Why a balancer could not be built from a policy and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    #[error(
        "maglev table size {0} is not a prime number; use a prime such as 65537 (the default) or 5000011"
    )]
    TableSizeNotPrime(usize),
    #[error("maglev table size {0} is above the maximum of 5000011; use a smaller prime")]
    TableTooLarge(usize),
    #[error(
        "{endpoints} endpoints do not fit a maglev table of {table_size} entries; use a prime table size of at least 100 times the number of endpoints"
    )]
    TooManyEndpoints { endpoints: usize, table_size: usize },
}
