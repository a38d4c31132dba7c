//! Firecracker's `--config-file`: the whole pre-boot configuration in one JSON object whose
//! keys are the API's paths (`boot-source`, `drives`, `machine-config`, ...), read into the
//! same typed requests the API takes, in the order Firecracker applies them.

use crate::model::*;
use crate::route::ApiRequest;
use serde::Deserialize;

/// The file's shape, as Firecracker's `VmmConfig`: `boot-source` and `drives` must be there,
/// the rest is optional; unknown keys are ignored, as Firecracker ignores them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConfigFile {
    pub balloon: Option<Balloon>,
    pub drives: Vec<Drive>,
    pub boot_source: BootSource,
    pub cpu_config: Option<CpuConfig>,
    pub logger: Option<Logger>,
    pub machine_config: Option<MachineConfig>,
    pub metrics: Option<Metrics>,
    pub mmds_config: Option<MmdsConfig>,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    pub vsock: Option<Vsock>,
    pub entropy: Option<Entropy>,
    /// In Firecracker's file but not in microvm: refused when present.
    #[serde(default)]
    pub pmem: Vec<serde_json::Value>,
    pub memory_hotplug: Option<serde_json::Value>,
}

type Entropy = EntropyDevice;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("invalid config file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("config file: {0} is not supported by microvm")]
    NotSupported(&'static str),
}

/// The requests the file stands for, in Firecracker's order (logger and metrics first, so
/// the rest is logged; the machine before the devices that depend on its memory size).
pub fn parse(text: &[u8]) -> Result<Vec<ApiRequest>, ConfigFileError> {
    let file: ConfigFile = serde_json::from_slice(text)?;
    if !file.pmem.is_empty() {
        return Err(ConfigFileError::NotSupported("pmem"));
    }
    if file.memory_hotplug.is_some() {
        return Err(ConfigFileError::NotSupported("memory-hotplug"));
    }
    let mut requests = Vec::new();
    requests.extend(file.logger.map(ApiRequest::PutLogger));
    requests.extend(file.metrics.map(ApiRequest::PutMetrics));
    requests.extend(file.machine_config.map(ApiRequest::PutMachineConfig));
    requests.extend(file.cpu_config.map(ApiRequest::PutCpuConfig));
    requests.push(ApiRequest::PutBootSource(file.boot_source));
    requests.extend(file.drives.into_iter().map(ApiRequest::PutDrive));
    requests.extend(file.network_interfaces.into_iter().map(ApiRequest::PutNetworkInterface));
    requests.extend(file.vsock.map(ApiRequest::PutVsock));
    requests.extend(file.balloon.map(ApiRequest::PutBalloon));
    requests.extend(file.entropy.map(ApiRequest::PutEntropy));
    requests.extend(file.mmds_config.map(ApiRequest::PutMmdsConfig));
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firecracker_example_config() {
        let text = br#"{
          "boot-source": {"kernel_image_path": "vmlinux.bin", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
          "drives": [{"drive_id": "rootfs", "path_on_host": "rootfs.ext4", "is_root_device": true, "is_read_only": false}],
          "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false},
          "network-interfaces": [{"iface_id": "eth0", "guest_mac": "AA:FC:00:00:00:01", "host_dev_name": "tap0"}]
        }"#;
        let requests = parse(text).unwrap();
        assert!(matches!(requests[0], ApiRequest::PutMachineConfig(_)));
        assert!(matches!(requests[1], ApiRequest::PutBootSource(_)));
        assert!(matches!(&requests[2], ApiRequest::PutDrive(d) if d.drive_id == "rootfs"));
        assert!(matches!(&requests[3], ApiRequest::PutNetworkInterface(n) if n.host_dev_name == "tap0"));
    }

    #[test]
    fn bad_files_are_named() {
        let e = parse(br#"{"drives": []}"#).unwrap_err().to_string();
        assert!(e.contains("missing field `boot-source`"), "{e}");
        let e = parse(br#"{"boot-source": {"kernel_image_path": "k", "x": 1}, "drives": []}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
        let e = parse(br#"{"boot-source": {"kernel_image_path": "k"}, "drives": [], "pmem": [{}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "config file: pmem is not supported by microvm");
    }
}
