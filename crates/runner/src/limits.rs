//! How many builds a node runs at once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// A counting semaphore over build slots. Clones share the same slots.
///
/// Blocking on purpose (std `Mutex` and `Condvar`): builds run on threads,
/// and this crate owns no async runtime. The node should prefer
/// [`BuildSlots::try_acquire`] and bid only for builds it can start.
#[derive(Debug, Clone)]
pub struct BuildSlots {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Slots free now.
    free: Mutex<usize>,
    released: Condvar,
    total: usize,
}

/// One slot, held until dropped.
#[must_use = "the slot is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct SlotGuard {
    shared: Arc<Shared>,
}

impl BuildSlots {
    /// `total` slots, all free.
    pub fn new(total: usize) -> BuildSlots {
        BuildSlots {
            shared: Arc::new(Shared {
                free: Mutex::new(total),
                released: Condvar::new(),
                total,
            }),
        }
    }

    /// All slots, free or not.
    pub fn total(&self) -> usize {
        self.shared.total
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        *self.shared.lock()
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<SlotGuard> {
        let mut free = self.shared.lock();
        if *free == 0 {
            return None;
        }
        *free -= 1;
        Some(self.guard())
    }

    /// A slot, waiting until one is free.
    pub fn acquire(&self) -> SlotGuard {
        let mut free = self.shared.lock();
        while *free == 0 {
            free = self
                .shared
                .released
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        self.guard()
    }

    fn guard(&self) -> SlotGuard {
        SlotGuard {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Shared {
    /// The count is a plain number, valid even if a holder panicked.
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        *self.shared.lock() += 1;
        self.shared.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn slots_are_counted_and_returned() {
        let slots = BuildSlots::new(2);
        let a = slots.try_acquire().unwrap();
        let _b = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        assert_eq!(slots.available(), 0);
        drop(a);
        assert_eq!(slots.available(), 1);
        assert!(slots.try_acquire().is_some());
        assert_eq!(slots.total(), 2);
    }

    #[test]
    fn acquire_waits_for_a_release() {
        let slots = BuildSlots::new(1);
        let held = slots.acquire();
        let other = slots.clone();
        let waiter = std::thread::spawn(move || drop(other.acquire()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(held);
        waiter.join().unwrap();
        assert_eq!(slots.available(), 1);
    }
}
