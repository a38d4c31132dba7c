//! Firecracker's microVM metadata service (MMDS): a JSON store the host fills through the
//! API (`PUT|PATCH|GET /mmds`) and the guest reads over its own network interface, at
//! 169.254.169.254 by default, without any host networking.
//!
//! - [`store`]: the data store and its size limit;
//! - [`Mmds`]: the store shared between the API (main thread) and the network devices
//!   (the virtio thread), with the version of `PUT /mmds/config` and the session tokens;
//! - `token`: V2's session tokens;
//! - `http`: the guest's HTTP requests and Firecracker's answers to them;
//! - [`stack`]: the network stack the net device hands the guest's frames to
//!   (`packet`: Ethernet, ARP, IPv4 and TCP headers; `tcp`: the port-80 server).
//!
//! Our own stack, as Firecracker's `dumbo`, rather than a general one (smoltcp): the MMDS
//! needs ARP replies and a passive TCP server that answers small requests, a few hundred
//! lines with nothing to configure, where a general stack would add its sockets, timers
//! and routing to the static binary for features the MMDS never uses.

mod http;
mod packet;
pub mod stack;
pub mod store;
mod tcp;
mod token;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use store::{MmdsError, MmdsStore};

pub use stack::MmdsStack;

/// The MMDS's address unless `PUT /mmds/config` gives `ipv4_address` (Firecracker's).
pub const DEFAULT_IPV4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// `PUT /mmds/config`'s `version`: V1 answers any GET; V2 only one with a session token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    #[default]
    V1,
    V2,
}

/// How the guest side answers, set by `PUT /mmds/config` before boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub version: Version,
    /// `imds_compat`: always EC2's IMDS text format, whatever the `Accept` header says.
    pub imds_compat: bool,
}

struct Inner {
    store: MmdsStore,
    settings: Settings,
    tokens: token::Tokens,
}

/// The store, shared: the API changes it while the devices answer the guest from it.
/// Clones are the same store. Equal when they are the same store.
#[derive(Clone)]
pub struct Mmds {
    inner: Arc<Mutex<Inner>>,
}

impl Mmds {
    /// An empty store of at most `limit` bytes (serialised), V1.
    pub fn new(limit: usize) -> Mmds {
        let inner =
            Inner { store: MmdsStore::new(limit), settings: Settings::default(), tokens: token::Tokens::default() };
        Mmds { inner: Arc::new(Mutex::new(inner)) }
    }

    /// A panic elsewhere while holding the lock leaves a store that is still whole (every
    /// change is made on a copy first), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn size_limit(&self) -> usize {
        self.lock().store.size_limit()
    }

    /// What `GET /mmds` shows.
    pub fn get(&self) -> serde_json::Value {
        self.lock().store.get()
    }

    pub fn put(&self, value: serde_json::Value) -> Result<(), MmdsError> {
        self.lock().store.put(value)
    }

    pub fn patch(&self, patch: serde_json::Value) -> Result<(), MmdsError> {
        self.lock().store.patch(patch)
    }

    pub fn settings(&self) -> Settings {
        self.lock().settings
    }

    pub fn set_settings(&self, settings: Settings) {
        self.lock().settings = settings;
    }

    /// Answers one HTTP request from the guest (`http.rs`).
    fn answer(&self, request: &http::Request) -> http::Answer {
        let mut inner = self.lock();
        let Inner { store, settings, tokens } = &mut *inner;
        http::answer(request, store, *settings, tokens)
    }
}

impl PartialEq for Mmds {
    fn eq(&self, other: &Mmds) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Mmds {}

impl std::fmt::Debug for Mmds {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Mmds").field("settings", &self.settings()).finish_non_exhaustive()
    }
}
