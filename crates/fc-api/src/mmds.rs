//! The MMDS data store as the API sees it. It lives in the `mmds` crate, which the
//! virtio-net device shares with the API (the guest reads what `PUT /mmds` stored).

pub use mmds::store::{MmdsError, MmdsStore, TOO_LARGE};
pub use mmds::Mmds;
