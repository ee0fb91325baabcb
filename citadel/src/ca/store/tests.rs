#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::dir::DirStore;
use super::{CaStore, StoreError, load, load_or_create, names, rotate};
use crate::ca::rotation::Step;
use crate::testing;

fn root() -> Result<crate::ca::root::RootPair, crate::ca::root::RootError> {
    Ok(testing::new_root(Duration::from_secs(3600)))
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_directory_is_created_once_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("ca"));
    assert!(load(&store).await.unwrap().is_none());
    let (created, fresh) = load_or_create(&store, root).await.unwrap();
    assert!(fresh);
    assert_eq!(mode(&store.path(names::ROOT_KEY)), 0o600);
    assert_eq!(mode(&store.path(names::ROOT_CERT)), 0o644);
    assert_eq!(mode(&dir.path().join("ca")), 0o700);

    // A second creator loses: the first root stays.
    assert!(!store.create(&created.to_files()).await.unwrap());
    let (loaded, fresh) = load_or_create(&store, || panic!("must not create"))
        .await
        .unwrap();
    assert!(!fresh);
    assert_eq!(loaded, created);
}

#[tokio::test]
async fn rotation_steps_write_and_remove_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    load_or_create(&store, root).await.unwrap();
    rotate(&store, Step::Prepare, root).await.unwrap();
    assert_eq!(mode(&store.path(names::NEXT_KEY)), 0o600);
    rotate(&store, Step::Activate, root).await.unwrap();
    assert!(
        !store.path(names::NEXT_KEY).exists(),
        "the prepared key moved"
    );
    assert!(store.path(names::PREVIOUS_CERT).exists());
    assert_eq!(mode(&store.path(names::ROOT_KEY)), 0o600);
    rotate(&store, Step::Finish, root).await.unwrap();
    assert!(!store.path(names::PREVIOUS_CERT).exists());
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

#[tokio::test]
async fn an_empty_or_broken_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let error = rotate(&store, Step::Prepare, root).await.unwrap_err();
    assert!(matches!(error, StoreError::Empty { .. }), "{error}");
    std::fs::write(store.path(names::ROOT_KEY), "not a key").unwrap();
    let error = load(&store).await.unwrap_err().to_string();
    assert!(error.contains("root-cert.pem is missing"), "{error}");
}
