//! Where guest RAM lives: `-object memory-backend-memfd|file|ram`, chosen by
//! `-machine memory-backend=ID` or `-numa node,memdev=ID`, and the legacy
//! `-mem-path` / `-mem-prealloc`. Their properties are described in
//! `device_props.rs` and `options.rs`.

use std::path::PathBuf;

use vmm::config::{MemoryBackend, MemoryConfig};

use super::backends::OBJECT;
use super::device_props::OBJECT_KINDS;
use super::keyval::{kind_name, kind_settings, settings};
use super::machine::parse_size;
use super::machine_props::NUMA_PROPS;
use super::{invalid, unhandled, ArgsError, MEM_ALIGN};

const NUMA: &str = "-numa";

/// One `-object memory-backend-*`.
struct BackendObject {
    id: String,
    size: u64,
    /// How the object was written, for messages.
    value: String,
    config: MemoryConfig,
}

/// The memory options met so far, resolved in [`MemoryOptions::resolve`].
#[derive(Default)]
pub(super) struct MemoryOptions {
    objects: Vec<BackendObject>,
    /// `-numa node,memdev=ID`.
    numa_memdev: Option<String>,
    numa_nodes: u32,
    mem_path: Option<PathBuf>,
    prealloc: bool,
}

/// Whether an `-object` value is a memory backend (handled here).
pub(super) fn is_memory_object(value: &str) -> bool {
    matches!(kind_name(OBJECT, value, "qom-type"), Ok(Some(kind)) if kind.starts_with("memory-backend-"))
}

impl MemoryOptions {
    /// `-object memory-backend-{memfd,file,ram},id=ID,size=SIZE,...`
    pub(super) fn object(&mut self, value: &str) -> Result<(), ArgsError> {
        let name = kind_name(OBJECT, value, "qom-type")?.unwrap_or_default();
        let Some(kind) = OBJECT_KINDS.iter().find(|k| k.name == name) else {
            return Err(invalid(OBJECT, value, "memory backends: memory-backend-memfd, -file or -ram"));
        };
        let backend = match kind.name {
            "memory-backend-memfd" => MemoryBackend::Memfd { hugetlb: false, hugepage_size: None },
            "memory-backend-file" => MemoryBackend::File { path: PathBuf::new() },
            _ => MemoryBackend::Anonymous,
        };
        // QEMU's defaults: only a memfd is shared unless share= says otherwise.
        let shared = matches!(backend, MemoryBackend::Memfd { .. });
        let mut config = MemoryConfig { backend, shared, prealloc: false };
        let (mut id, mut size, mut mem_path) = (None, None, None);
        for s in kind_settings(OBJECT, value, "qom-type", kind)? {
            match s.name() {
                "id" => id = Some(s.id(OBJECT)?),
                "size" => size = Some(parse_size(&s.value).ok_or_else(|| invalid(OBJECT, &s.text, "expected a size"))?),
                "share" => config.shared = s.on,
                "prealloc" => config.prealloc = s.on,
                "mem-path" => mem_path = Some(s.path(OBJECT)?),
                "hugetlb" | "hugetlbsize" => set_hugetlb(&mut config.backend, s.name(), &s.value, &s.on, &s.text)?,
                name => return Err(unhandled(OBJECT, name)),
            }
        }
        if let MemoryBackend::File { path } = &mut config.backend {
            *path = mem_path.ok_or_else(|| invalid(OBJECT, value, "mem-path= is required"))?;
        }
        if let MemoryBackend::Memfd { hugetlb: false, hugepage_size: Some(_) } = config.backend {
            return Err(invalid(OBJECT, value, "hugetlbsize= needs hugetlb=on"));
        }
        let id = id.ok_or_else(|| invalid(OBJECT, value, "id= is required"))?;
        let size = size.filter(|s| *s > 0).ok_or_else(|| invalid(OBJECT, value, "size= is required"))?;
        if self.objects.iter().any(|o| o.id == id) {
            return Err(invalid(OBJECT, value, format!("duplicate id '{id}'")));
        }
        self.objects.push(BackendObject { id, size, value: value.to_owned(), config });
        Ok(())
    }

    /// `-numa node,memdev=ID`: one node only.
    pub(super) fn numa(&mut self, value: &str) -> Result<(), ArgsError> {
        let mut memdev = None;
        for s in settings(NUMA, value, Some("type"), NUMA_PROPS, NUMA)? {
            match s.name() {
                "type" if s.value == "node" => {}
                "type" => return Err(invalid(NUMA, &s.text, "only -numa node is supported (one node)")),
                "memdev" => memdev = Some(s.reference(NUMA)?),
                "nodeid" if s.value == "0" => {}
                "nodeid" => return Err(invalid(NUMA, &s.text, "microvm has one NUMA node: only nodeid=0")),
                name => return Err(unhandled(NUMA, name)),
            }
        }
        self.numa_nodes += 1;
        if self.numa_nodes > 1 {
            return Err(invalid(NUMA, value, "microvm has one NUMA node; a second -numa node is not supported"));
        }
        let Some(memdev) = memdev else {
            return Err(invalid(NUMA, value, "memdev=ID is required (the node's memory backend)"));
        };
        self.numa_memdev = Some(memdev);
        Ok(())
    }

    pub(super) fn mem_path(&mut self, value: String) {
        self.mem_path = Some(PathBuf::from(value));
    }

    pub(super) fn mem_prealloc(&mut self) {
        self.prealloc = true;
    }

    /// The guest's RAM size and backing, from `-m` (if given) and the backend
    /// selected by `-machine memory-backend=` (which wins over `-numa`).
    pub(super) fn resolve(
        self,
        machine_backend: Option<String>,
        mem_size: Option<u64>,
        default_size: u64,
    ) -> Result<(u64, MemoryConfig), ArgsError> {
        let (option, selected) = match (machine_backend, self.numa_memdev) {
            (Some(m), Some(n)) if m != n => {
                return Err(invalid(
                    "-numa",
                    &n,
                    format!("the node's memdev must be the machine's memory-backend '{m}'"),
                ))
            }
            (Some(m), _) => ("-machine", Some(m)),
            (None, n) => ("-numa", n),
        };
        let Some(id) = selected else {
            let config = MemoryConfig {
                backend: self.mem_path.map_or(MemoryBackend::Anonymous, |path| MemoryBackend::File { path }),
                shared: false,
                prealloc: self.prealloc,
            };
            return Ok((mem_size.unwrap_or(default_size), config));
        };
        let Some(object) = self.objects.into_iter().find(|o| o.id == id) else {
            return Err(invalid(option, &id, "no -object memory-backend-* has this id"));
        };
        if self.mem_path.is_some() {
            return Err(invalid("-mem-path", &object.id, "conflicts with a memory backend; use one or the other"));
        }
        let size = object.size.next_multiple_of(MEM_ALIGN);
        if let Some(m) = mem_size.filter(|m| *m != size) {
            return Err(invalid(
                OBJECT,
                &object.value,
                format!("size ({} MiB) must equal -m ({} MiB)", object.size >> 20, m >> 20),
            ));
        }
        let mut config = object.config;
        config.prealloc |= self.prealloc;
        Ok((size, config))
    }
}

fn set_hugetlb(backend: &mut MemoryBackend, name: &str, value: &str, on: &bool, text: &str) -> Result<(), ArgsError> {
    let MemoryBackend::Memfd { hugetlb, hugepage_size } = backend else {
        return Err(unhandled(OBJECT, name));
    };
    if name == "hugetlb" {
        *hugetlb = *on;
        return Ok(());
    }
    match parse_size(value) {
        Some(size) if size.is_power_of_two() && size >= 4096 => *hugepage_size = Some(size),
        _ => return Err(invalid(OBJECT, text, "expected a power-of-two page size such as 2M or 1G")),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
