//! Mutexes here guard plain data that no panic leaves half-written, so a poisoned lock is
//! taken as it is rather than spreading the panic to every other task.

use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
