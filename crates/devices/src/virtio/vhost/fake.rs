//! A vhost backend that records what the device asks of it, and can be
//! told to fail one request with an errno, as the kernel would.

use ::vhost::net::VhostNet;
use ::vhost::vsock::VhostVsock;
use ::vhost::{Error, Result, VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use ::vhost::{VhostUserDirtyLogRegion, VhostUserMemoryRegionBase};
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::EventFd;

/// What the backend was asked, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    SetOwner,
    SetFeatures(u64),
    /// (guest address, size, host address) of each region.
    SetMemTable(Vec<(u64, u64, u64)>),
    VringNum(usize, u16),
    VringAddr(usize, u64, u64, u64),
    VringBase(usize, u16),
    VringCallFd(usize),
    VringKick(usize),
    GuestCid(u64),
    Running(bool),
    /// VHOST_NET_SET_BACKEND: queue, whether a tap was given.
    NetBackend(usize, bool),
    GetVringBase(usize),
}

#[derive(Clone, Default)]
pub struct FakeVhost {
    pub calls: Arc<Mutex<Vec<Request>>>,
    pub features: u64,
    /// The request whose name starts with this fails with `fail_errno`.
    pub fail: Option<(&'static str, i32)>,
    /// What VHOST_GET_VRING_BASE answers for queue q: `vring_base + q`.
    pub vring_base: u32,
}

impl FakeVhost {
    fn record(&self, call: Request) -> Result<()> {
        let name = format!("{call:?}");
        self.calls.lock().unwrap().push(call);
        match self.fail {
            Some((prefix, errno)) if name.starts_with(prefix) => {
                Err(Error::IoctlError(std::io::Error::from_raw_os_error(errno)))
            }
            _ => Ok(()),
        }
    }

    pub fn taken(&self) -> Vec<Request> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl VhostBackend for FakeVhost {
    fn get_features(&self) -> Result<u64> {
        Ok(self.features)
    }
    fn set_features(&self, features: u64) -> Result<()> {
        self.record(Request::SetFeatures(features))
    }
    fn set_owner(&self) -> Result<()> {
        self.record(Request::SetOwner)
    }
    fn reset_owner(&self) -> Result<()> {
        unimplemented!("microvm never resets the owner")
    }
    fn set_mem_table(&self, regions: &[VhostUserMemoryRegionInfo]) -> Result<Option<Vec<VhostUserMemoryRegionBase>>> {
        let table = regions.iter().map(|r| (r.guest_phys_addr, r.memory_size, r.userspace_addr)).collect();
        self.record(Request::SetMemTable(table)).map(|()| None)
    }
    fn set_log_base(&self, _: u64, _: Option<VhostUserDirtyLogRegion>) -> Result<()> {
        unimplemented!("no dirty logging")
    }
    fn set_log_fd(&self, _: RawFd) -> Result<()> {
        unimplemented!("no dirty logging")
    }
    fn set_vring_num(&self, queue: usize, num: u16) -> Result<()> {
        self.record(Request::VringNum(queue, num))
    }
    fn set_vring_addr(&self, queue: usize, c: &VringConfigData) -> Result<()> {
        self.record(Request::VringAddr(queue, c.desc_table_addr, c.avail_ring_addr, c.used_ring_addr))
    }
    fn set_vring_base(&self, queue: usize, base: u16) -> Result<()> {
        self.record(Request::VringBase(queue, base))
    }
    fn get_vring_base(&self, queue: usize) -> Result<u32> {
        self.record(Request::GetVringBase(queue)).map(|()| self.vring_base + queue as u32)
    }
    fn set_vring_call(&self, queue: usize, _: &EventFd) -> Result<()> {
        self.record(Request::VringCallFd(queue))
    }
    fn set_vring_kick(&self, queue: usize, _: &EventFd) -> Result<()> {
        self.record(Request::VringKick(queue))
    }
    fn set_vring_err(&self, _: usize, _: &EventFd) -> Result<()> {
        unimplemented!("errors are not watched")
    }
}

impl VhostVsock for FakeVhost {
    fn set_guest_cid(&self, cid: u64) -> Result<()> {
        self.record(Request::GuestCid(cid))
    }
    fn start(&self) -> Result<()> {
        self.record(Request::Running(true))
    }
    fn stop(&self) -> Result<()> {
        self.record(Request::Running(false))
    }
}

impl VhostNet for FakeVhost {
    fn set_backend(&self, queue: usize, fd: Option<&std::fs::File>) -> Result<()> {
        self.record(Request::NetBackend(queue, fd.is_some()))
    }
}
