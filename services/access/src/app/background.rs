//! Work a call leaves running after its answer (a failed login being
//! recorded, a reset request queued), counted so that waiting for it is
//! waiting on a fact.

use std::sync::Arc;

/// A count of work in flight after its call was answered.
#[derive(Clone, Debug, Default)]
pub struct Background(Arc<std::sync::atomic::AtomicUsize>);

/// One piece of background work; done when dropped.
#[derive(Debug)]
pub struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Background {
    /// Counts one more piece of work until the returned guard drops.
    pub fn enter(&self) -> Busy {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self.0.clone())
    }

    /// Pieces of work in flight.
    pub fn pending(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
