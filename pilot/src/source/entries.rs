//! ServiceEntries and WorkloadEntries as registry services and endpoints.
