//! A cap on what is held at once (the connections of a listener, the open streams): a
//! [`Semaphore`] with one permit per place, and a [`Gauge`] that counts the places held.
//!
//! A place is a [`Place`] guard: taking one never waits (at the cap the caller refuses at
//! once: a closed connection, a 503), and dropping it, however its holder ends (done, client
//! gone, error, shutdown), gives the permit back and moves the gauge down. So the cap is never
//! counted by hand and the gauge cannot drift from the places actually held. It imports
//! nothing from the crate but the gauge type.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Gauge;

/// At most `max` places held at once; cloning shares them.
#[derive(Debug, Clone)]
pub struct Cap {
    places: Arc<Semaphore>,
    held: Gauge,
}

impl Cap {
    /// `max` places, counted in `held` while taken.
    pub fn new(max: usize, held: Gauge) -> Self {
        Cap {
            places: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            held,
        }
    }

    /// A place, or `None` when all are held.
    pub fn take(&self) -> Option<Place> {
        let permit = self.places.clone().try_acquire_owned().ok()?;
        self.held.inc();
        Some(Place {
            permit: Some(permit),
            held: self.held.clone(),
        })
    }
}

/// One place under a [`Cap`], given back when dropped.
#[derive(Debug)]
pub struct Place {
    /// Always `Some` until dropped.
    permit: Option<OwnedSemaphorePermit>,
    held: Gauge,
}

impl Drop for Place {
    fn drop(&mut self) {
        // The place first, then the gauge: whoever sees the gauge go down can take a place.
        drop(self.permit.take());
        self.held.dec();
    }
}
