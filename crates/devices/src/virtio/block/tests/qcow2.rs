//! qcow2 drives and `snapshot=on` through the real transport: images made with imago
//! itself (the host tests in crates/cli/tests/qcow2.rs use qemu-img), read back with a
//! second imago instance that knows nothing of the device's caches.

use super::*;
use imago::file::File as ImagoFile;
use imago::qcow2::Qcow2;
use imago::{FormatAccess, FormatCreateBuilder, FormatDriverBuilder, PermissiveImplicitOpenGate, StorageOpenOptions};

const SIZE: u64 = 256 << 10;

fn imago_file(path: &Path, write: bool) -> ImagoFile {
    let file = std::fs::OpenOptions::new().read(true).write(write).open(path).unwrap();
    ImagoFile::from_open_file(file, StorageOpenOptions::new().filename(path).write(write)).unwrap()
}

/// An empty qcow2 image of SIZE bytes, over `backing` (a raw file) if given.
fn qcow2_image(backing: Option<&TempFile>) -> TempFile {
    let image = TempFile::new(&[]);
    let mut builder = Qcow2::<ImagoFile>::create_builder(imago_file(&image.path, true)).size(SIZE);
    if let Some(b) = backing {
        builder = builder.backing(b.path.display().to_string(), "raw".into());
    }
    builder.create().unwrap();
    image
}

/// What the image (with its chain) reads as, through a fresh imago instance.
fn image_bytes(image: &TempFile) -> Vec<u8> {
    let qcow2 = Qcow2::<ImagoFile>::builder(imago_file(&image.path, false))
        .open(PermissiveImplicitOpenGate::default())
        .unwrap();
    let access = FormatAccess::new(qcow2);
    let mut buf = vec![0u8; access.size() as usize];
    access.read(&mut buf[..], 0).unwrap();
    buf
}

fn qcow2_options(image: &TempFile, discard: Option<bool>) -> BlockOptions {
    let image_opts = ImageOptions { format: ImageFormat::Qcow2, snapshot: false, discard };
    BlockOptions { image: image_opts, ..options(&image.path, false, CacheMode::Writeback) }
}

#[test]
fn reads_come_from_the_backing_file_and_writes_stay_in_the_image() {
    let data = pattern(SIZE as usize);
    let base = TempFile::new(&data);
    let image = qcow2_image(Some(&base));
    let (mut d, dev) = TestDriver::new(Block::new(qcow2_options(&image, None)).unwrap());
    // The guest sees the virtual size, and no discard by default (QEMU's discard=ignore).
    assert_eq!(dev.lock().unwrap().capacity(), SIZE / 512);
    assert!(!has(d.device_features(), VIRTIO_BLK_F_DISCARD));
    assert!(has(d.device_features(), VIRTIO_BLK_F_WRITE_ZEROES));
    d.activate(0, 16);
    let buf = d.alloc(4096, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 100, &[(buf, 4096, true)]), (OK, 4097));
    assert_eq!(d.read_bytes(buf, 4096), &data[100 * 512..100 * 512 + 4096]);
    // A write into the middle of a cluster: the rest of it still reads as the backing file.
    let w = guest_buffer(&mut d, &[0xa5; 1024]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 3, &[(w, 1024, false)]), (OK, 1));
    let r = d.alloc(8 * 512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(r, 8 * 512, true)]).0, OK);
    let mut expect = data.clone();
    expect[3 * 512..5 * 512].fill(0xa5);
    assert_eq!(d.read_bytes(r, 8 * 512), &expect[..8 * 512]);
    // A guest FLUSH writes the metadata back: another reader sees the write.
    assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]), (OK, 1));
    assert_eq!(image_bytes(&image), expect);
    drop((d, dev));
    assert_eq!(base.contents(), data, "the backing file is never written");
}

#[test]
fn dropping_the_device_writes_the_metadata_back() {
    let image = qcow2_image(None);
    let (mut d, dev) = TestDriver::new(Block::new(qcow2_options(&image, None)).unwrap());
    d.activate(0, 16);
    let w = guest_buffer(&mut d, &[0x3c; 4096]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 64, &[(w, 4096, false)]), (OK, 1));
    drop((d, dev));
    let mut expect = vec![0u8; SIZE as usize];
    expect[64 * 512..64 * 512 + 4096].fill(0x3c);
    assert_eq!(image_bytes(&image), expect);
}

#[test]
fn a_snapshot_save_writes_the_metadata_back() {
    let image = qcow2_image(None);
    let (mut d, dev) = TestDriver::new(Block::new(qcow2_options(&image, None)).unwrap());
    d.activate(0, 16);
    let w = guest_buffer(&mut d, &[0x77; 512]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 9, &[(w, 512, false)]), (OK, 1));
    let state = dev.lock().unwrap().save().unwrap();
    assert_eq!(state, VirtioState::Block(BlockState { capacity: SIZE / 512, read_only: false }));
    // Read while the device still holds the image: the file alone has the write.
    assert_eq!(&image_bytes(&image)[9 * 512..10 * 512], &[0x77; 512]);
}

#[test]
fn discard_unmap_deallocates_and_reads_zeroes_over_a_backing_file() {
    let data = pattern(SIZE as usize);
    let base = TempFile::new(&data);
    let image = qcow2_image(Some(&base));
    let (mut d, _dev) = TestDriver::new(Block::new(qcow2_options(&image, Some(true))).unwrap());
    assert!(has(d.device_features(), VIRTIO_BLK_F_DISCARD));
    type C = virtio_blk_config;
    assert_eq!(config_u32(&mut d, offset_of!(C, discard_sector_alignment)), 128, "one 64 KiB cluster");
    d.activate(0, 16);
    let w = guest_buffer(&mut d, &[0x11; 64 << 10]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 128, &[(w, 64 << 10, false)]), (OK, 1));
    // The second cluster discarded, and 4 KiB of the third zeroed.
    let (segs, len) = segments(&mut d, &[(128, 128, 0)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_DISCARD, 0, &[(segs, len, false)]), (OK, 1));
    let (segs, len) = segments(&mut d, &[(256, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(segs, len, false)]), (OK, 1));
    let r = d.alloc(192 << 10, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 128, &[(r, 192 << 10, true)]).0, OK);
    let mut expect = data[64 << 10..256 << 10].to_vec();
    expect[..64 << 10].fill(0);
    expect[64 << 10..68 << 10].fill(0);
    assert_eq!(d.read_bytes(r, 192 << 10), expect, "zeroes, not the backing file");
}

#[test]
fn snapshot_on_serves_writes_from_an_overlay_and_leaves_the_image() {
    let data = pattern(SIZE as usize);
    for format in [ImageFormat::Raw, ImageFormat::Qcow2] {
        let raw = TempFile::new(&data);
        let qcow2 = qcow2_image(Some(&raw));
        let file = if format == ImageFormat::Raw { &raw } else { &qcow2 };
        let before = file.contents();
        let image = ImageOptions { format, snapshot: true, discard: None };
        // aio=io_uring does not apply to a formatted drive: served synchronously.
        let opts = BlockOptions { image, engine: Engine::IoUring, ..options(&file.path, false, CacheMode::Writeback) };
        let (mut d, dev) = TestDriver::new(Block::new(opts).unwrap());
        assert!(dev.lock().unwrap().worker.engine.is_none(), "{format:?}");
        assert!(!has(d.device_features(), VIRTIO_BLK_F_RO), "{format:?}: the guest may write");
        d.activate(0, 16);
        let w = guest_buffer(&mut d, &[0xe7; 2048]);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 20, &[(w, 2048, false)]), (OK, 1));
        let r = d.alloc(4096, 0);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 18, &[(r, 4096, true)]).0, OK);
        let mut expect = data[18 * 512..26 * 512].to_vec();
        expect[1024..3072].fill(0xe7);
        assert_eq!(d.read_bytes(r, 4096), expect, "{format:?}: the guest reads its writes");
        assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]), (OK, 1));
        // A VM with such a drive cannot be saved: a restore would not find the overlay.
        let refused = dev.lock().unwrap().save().unwrap_err().to_string();
        assert!(refused.contains("snapshot=on"), "{refused}");
        // The image is only read (a shared lock): another reader may open it meanwhile.
        let mut second = options(&file.path, true, CacheMode::Writeback);
        second.image.format = format;
        assert!(Block::new(second).is_ok(), "{format:?}: a reader alongside");
        drop((d, dev));
        assert_eq!(file.contents(), before, "{format:?}: the image is unchanged");
    }
}

#[test]
fn a_raw_file_given_format_qcow2_is_refused_naming_it() {
    let file = TempFile::new(&pattern(4096));
    let opts = BlockOptions {
        image: ImageOptions { format: ImageFormat::Qcow2, ..Default::default() },
        ..options(&file.path, false, CacheMode::Writeback)
    };
    let Err(e) = Block::new(opts) else { panic!("a raw file opened as qcow2") };
    let line = e.to_string();
    assert!(line.contains(&file.path.display().to_string()) && line.contains("not a qcow2 image"), "{line}");
}
