//! Firecracker's `rate_limiter` bodies as the devices' limiters take them, and their
//! changes at run time (`PATCH /drives`, `PATCH /network-interfaces`). A change applies at
//! once, with full buckets, and is written into the configuration that `GET /vm/config`
//! shows and `/snapshot/create` stores, so a restored VM keeps it.

use super::ApiFacts;
use crate::config::{BucketConfig, DriveLimits, LimiterConfig};
use crate::monitor::VmControl;
use devices::virtio::block::Block;
use devices::virtio::net::Net;
use fc_api::model::{PartialDrive, PartialNetworkInterface, RateLimiter, TokenBucket};
use fc_api::Response;
use serde_json::Value;

/// A `rate_limiter` body: the same fields (a bucket of size 0 or refill_time 0 limits
/// nothing, as in Firecracker).
pub fn limiter(r: &Option<RateLimiter>) -> LimiterConfig {
    let bucket = |b: &Option<TokenBucket>| {
        b.map(|b| BucketConfig {
            size: b.size,
            one_time_burst: b.one_time_burst.unwrap_or(0),
            refill_time_ms: b.refill_time,
        })
    };
    let r = r.unwrap_or_default();
    LimiterConfig { bandwidth: bucket(&r.bandwidth), ops: bucket(&r.ops) }
}

/// A drive's `rate_limiter`: one limiter on every request.
pub fn drive_limits(r: &Option<RateLimiter>) -> DriveLimits {
    DriveLimits { total: limiter(r), ..DriveLimits::default() }
}

/// Firecracker's update rule: a bucket the PATCH gives replaces the one in place (one of
/// size 0 or refill_time 0 then limits nothing), a bucket it leaves out stays.
fn merged(current: Option<RateLimiter>, update: Option<RateLimiter>) -> Option<RateLimiter> {
    let Some(update) = update else { return current };
    let mut new = current.unwrap_or_default();
    if update.bandwidth.is_some() {
        new.bandwidth = update.bandwidth;
    }
    if update.ops.is_some() {
        new.ops = update.ops;
    }
    Some(new)
}

/// The entry of `facts.vm_config[list]` whose `id_field` is `id`.
fn entry<'a>(facts: &'a mut ApiFacts, list: &str, id_field: &str, id: &str) -> Option<&'a mut Value> {
    let entries = facts.vm_config.get_mut(list)?.as_array_mut()?;
    entries.iter_mut().find(|e| e.get(id_field).and_then(Value::as_str) == Some(id))
}

/// `field` of a configuration entry, as a rate limiter (absent or null: none).
fn current(entry: &Value, field: &str) -> Option<RateLimiter> {
    entry.get(field).and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn store(entry: &mut Value, field: &str, limiter: Option<RateLimiter>) {
    if let (Some(limiter), Some(map)) = (limiter, entry.as_object_mut()) {
        map.insert(field.into(), serde_json::to_value(limiter).unwrap_or(Value::Null));
    }
}

/// `PATCH /drives/{id}` after boot: the rate limiter only (a new backing file is refused).
pub(super) fn patch_drive(vm: &VmControl, facts: &mut ApiFacts, patch: PartialDrive) -> Response {
    if patch.path_on_host.is_some() {
        return Response::bad_request(
            "Drive update error: a new backing file (path_on_host) after boot is not supported by microvm.",
        );
    }
    let Some(block) = vm.devices.get_as::<Block>(&patch.drive_id) else {
        return Response::bad_request(format!("Drive update error: no drive with id {}.", patch.drive_id));
    };
    let Some(entry) = entry(facts, "drives", "drive_id", &patch.drive_id) else {
        return Response::bad_request(format!("Drive update error: no drive with id {}.", patch.drive_id));
    };
    let new = merged(current(entry, "rate_limiter"), patch.rate_limiter);
    block.lock().unwrap_or_else(|p| p.into_inner()).set_limits(&drive_limits(&new));
    store(entry, "rate_limiter", new);
    Response::no_content()
}

/// `PATCH /network-interfaces/{id}` after boot: its RX and TX rate limiters.
pub(super) fn patch_net(vm: &VmControl, facts: &mut ApiFacts, patch: PartialNetworkInterface) -> Response {
    let Some(net) = vm.devices.get_as::<Net>(&patch.iface_id) else {
        return Response::bad_request(format!(
            "Network interface update error: no network interface with id {}.",
            patch.iface_id
        ));
    };
    let Some(entry) = entry(facts, "network-interfaces", "iface_id", &patch.iface_id) else {
        return Response::bad_request(format!(
            "Network interface update error: no network interface with id {}.",
            patch.iface_id
        ));
    };
    let rx = merged(current(entry, "rx_rate_limiter"), patch.rx_rate_limiter);
    let tx = merged(current(entry, "tx_rate_limiter"), patch.tx_rate_limiter);
    net.lock().unwrap_or_else(|p| p.into_inner()).set_limits(&limiter(&rx), &limiter(&tx));
    store(entry, "rx_rate_limiter", rx);
    store(entry, "tx_rate_limiter", tx);
    Response::no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(size: u64, refill_time: u64) -> Option<TokenBucket> {
        Some(TokenBucket { size, one_time_burst: None, refill_time })
    }

    #[test]
    fn a_patch_replaces_the_buckets_it_names_and_keeps_the_others() {
        let current = Some(RateLimiter { bandwidth: bucket(1000, 100), ops: bucket(10, 100) });
        let update = Some(RateLimiter { bandwidth: bucket(5000, 100), ops: None });
        assert_eq!(merged(current, update), Some(RateLimiter { bandwidth: bucket(5000, 100), ops: bucket(10, 100) }));
        assert_eq!(merged(current, None), current, "no rate_limiter: nothing changes");
        // A zero bucket stays in the body and limits nothing.
        let off = merged(current, Some(RateLimiter { bandwidth: bucket(0, 0), ops: None }));
        assert!(!limiter(&off).bandwidth.unwrap().limits());
        assert!(limiter(&off).ops.unwrap().limits());
    }

    #[test]
    fn firecracker_fields_map_one_for_one() {
        let body = Some(RateLimiter {
            bandwidth: Some(TokenBucket { size: 1_000_000, one_time_burst: Some(5), refill_time: 100 }),
            ops: None,
        });
        let l = drive_limits(&body);
        assert_eq!(l.total.bandwidth, Some(BucketConfig { size: 1_000_000, one_time_burst: 5, refill_time_ms: 100 }));
        assert!(!l.read.limits() && !l.write.limits() && l.ops_size == 0);
    }
}
