//! `-device virtio-rng-device`: entropy from getrandom(2) (Firecracker's `entropy`, with
//! its rate limit).

use super::props::{prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, BackendKind, BackendRef, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::rate_limiter::LimiterConfig;

pub(super) const DESC: KindDesc = KindDesc {
    name: "virtio-rng-device",
    help: "An entropy source; it always draws from getrandom(2).",
    props: &[prop("rng", Value::Text("ID"), None, "An -object rng-random or rng-builtin."), PACKED, DEVICE_ID],
};

/// `-device virtio-rng-device`, Firecracker's `PUT /entropy`. `Default` is the kind's
/// defaults (unlimited: QEMU's command line has no limit for it), for a front end to set
/// what its user gave over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RngConfig {
    /// Firecracker's `rate_limiter`.
    pub limits: LimiterConfig,
}

impl RngConfig {
    /// The kind's defaults with Firecracker's `rate_limiter`.
    pub fn limited(limits: LimiterConfig) -> RngConfig {
        RngConfig { limits }
    }
}

pub(super) struct Rng;

impl DeviceKind for Rng {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        // The object only has to exist: every rng draws from the same pool.
        let backend = args.reference("rng")?.map(|id| BackendRef { kind: BackendKind::RngObject, id });
        // No limit from QEMU's command line, which has none for it.
        Ok(Parsed::Slot { config: DeviceConfig::Rng(Default::default()), id: args.id()?, backend })
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["getrandom", "timerfd_create"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Rng(cfg) = config else { return Err(wrong_config(DESC.name)) };
        let rng = devices::virtio::rng::Rng::limited(&cfg.limits)
            .map_err(|source| Error::Io { what: "virtio-rng", source })?;
        ctx.add(rng, "virtio-mmio (virtio-rng)", DESC.name, None)
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let config = DeviceConfig::Rng(Default::default());
        vec![
            super::Example { name: DESC.name, props: &[], backend: None, config: config.clone() },
            super::Example {
                name: DESC.name,
                props: &[("rng", "r0")],
                backend: Some(super::Backend::RngObject),
                config,
            },
        ]
    }
}
