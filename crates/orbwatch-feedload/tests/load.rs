//! `load_feed_file` on the real feeds of the repository: what it stores,
//! the digest it records, and a failed read that leaves the store as it
//! was.

use std::path::{Path, PathBuf};

use orbwatch_feedload::{FeedFile, LoadError, load_feed_file};
use orbwatch_intel::{FeedFormat, ReadOptions};
use orbwatch_store::Store;
use sha2::Digest as _;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sha256_of(path: &Path) -> String {
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn load(
    store: &mut Store,
    path: &Path,
    name: &str,
    format: Option<FeedFormat>,
) -> Result<orbwatch_feedload::LoadedReport, LoadError> {
    let opts = ReadOptions::new(name);
    let label = path.file_name().unwrap().to_string_lossy().into_owned();
    load_feed_file(
        store,
        &FeedFile {
            path,
            name,
            format,
            opts: &opts,
            label: &label,
            source: "test",
        },
    )
}

/// The bundled CERT-FR feed (161 IPv4 addresses), detected and streamed:
/// stored with the file's SHA-256; a MISP feed folder, read whole, with
/// the digest of its files.
#[test]
fn real_feeds_are_stored_with_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let certfr = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let got = load(&mut store, &certfr, "certfr", None).unwrap();
    assert_eq!(got.format, FeedFormat::Certfr);
    assert_eq!(got.sha256, sha256_of(&certfr));
    assert_eq!(got.report.loaded, 161, "{:?}", got.report);
    let info = store.feed("certfr").unwrap().unwrap();
    assert_eq!(info.total(), 161);
    assert_eq!(info.source_sha256.as_deref(), Some(got.sha256.as_str()));
    assert_eq!(info.source_path, "test");

    let folder = repo().join("tests/data/feeds-stix-misp/misp-feed");
    let got = load(&mut store, &folder, "mispfeed", None).unwrap();
    assert_eq!(got.format, FeedFormat::MispFeed);
    assert!(got.report.loaded > 0, "{:?}", got.report);
    assert_eq!(got.sha256.len(), 64);
    // A folder with another format named is refused before anything.
    let e = load(&mut store, &folder, "x", Some(FeedFormat::Csv)).unwrap_err();
    assert!(matches!(e, LoadError::FolderNotMispFeed { .. }), "{e}");
    assert!(e.is_bad_input());
}

/// A CSV whose header maps no value column stops the import: the error
/// says why, counts as the input's fault, and the feed's earlier version
/// stays.
#[test]
fn a_failed_read_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "45.137.21.9\n185.220.101.4\n").unwrap();
    load(&mut store, &good, "relays", None).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "colour,size\nred,2\n").unwrap();
    let e = load(&mut store, &bad, "relays", Some(FeedFormat::Csv)).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    let info = store.feed("relays").unwrap().unwrap();
    assert_eq!((info.version, info.total()), (1, 2));
    // A missing file names itself.
    let e = load(&mut store, &dir.path().join("nope.txt"), "relays", None).unwrap_err();
    assert!(
        matches!(e, LoadError::Io { .. }) && e.to_string().contains("nope.txt"),
        "{e}"
    );
    assert!(!e.is_bad_input());
}

/// `refuse_empty_version` (what subscriptions ask for): a file that gives
/// no indicator, streamed (an empty list) or read whole (an empty JSON
/// document), is refused while the feed has some, and the feed keeps its
/// version; without it (`feed add`, uploads) the empty version is stored
/// as before. A new feed may start empty either way.
#[test]
fn an_empty_version_is_refused_only_when_asked() {
    use orbwatch_feedload::{LoadRules, load_feed_file_with};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let certfr = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    load(&mut store, &certfr, "certfr", None).unwrap();
    let empty_list = dir.path().join("empty.txt");
    std::fs::write(&empty_list, "# nothing today\n").unwrap();
    let empty_stix = dir.path().join("empty.json");
    std::fs::write(
        &empty_stix,
        r#"{"type": "bundle", "id": "bundle--0b1a5c55-0d0c-4b5e-9b3a-000000000001", "objects": []}"#,
    )
    .unwrap();
    let refuse = LoadRules {
        refuse_empty_version: true,
    };
    let opts = ReadOptions::new("certfr");
    for (path, format) in [
        (&empty_list, Some(FeedFormat::Plain)),
        (&empty_stix, Some(FeedFormat::Stix)),
    ] {
        let e = load_feed_file_with(
            &mut store,
            &FeedFile {
                path,
                name: "certfr",
                format,
                opts: &opts,
                label: "empty",
                source: "test",
            },
            refuse,
        )
        .unwrap_err();
        match &e {
            LoadError::Store(orbwatch_store::StoreError::EmptyVersionRefused { had, .. }) => {
                assert_eq!(*had, 161, "{e}")
            }
            other => panic!("{}: {other}", path.display()),
        }
        assert!(e.to_string().contains("keeps its current version"), "{e}");
        let info = store.feed("certfr").unwrap().unwrap();
        assert_eq!((info.version, info.total()), (1, 161), "{}", path.display());
        assert_eq!(store.feed_versions("certfr").unwrap().len(), 1);
    }
    // A new feed may start empty, refused or not.
    let got = load_feed_file_with(
        &mut store,
        &FeedFile {
            path: &empty_list,
            name: "fresh",
            format: Some(FeedFormat::Plain),
            opts: &opts,
            label: "empty",
            source: "test",
        },
        refuse,
    )
    .unwrap();
    assert_eq!((got.report.version, got.report.loaded), (1, 0));
    // Without the rule, the empty file is a new, empty version.
    let got = load(&mut store, &empty_list, "certfr", Some(FeedFormat::Plain)).unwrap();
    assert_eq!((got.report.version, got.report.removed), (2, 161));
    assert_eq!(store.feed("certfr").unwrap().unwrap().total(), 0);
}
