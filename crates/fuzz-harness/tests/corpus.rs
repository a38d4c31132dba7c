//! Replays the committed corpora (`fuzz/corpus/<target>/*`) through the fuzz targets'
//! bodies on stable: every input the fuzzers kept, and every crash once fixed, stays
//! passing in CI.

use std::path::Path;

#[test]
fn every_committed_input_replays_cleanly() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    for &(target, body) in fuzz_harness::TARGETS {
        let dir = corpus.join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            eprintln!("{}", path.display());
            body(&input);
            count += 1;
        }
        assert!(count > 0, "no corpus for {target} in {}", dir.display());
        replayed += count;
    }
    eprintln!("replayed {replayed} inputs");
}
