use super::*;

fn key(name: &str) -> Key {
    (4, name.to_owned())
}

fn got(proxy: usize, at: Instant, keys: &[&str]) -> Event {
    Event {
        proxy,
        at: Some(at),
        resources: keys.len(),
        keys: keys.iter().map(|k| key(k)).collect(),
        bytes: 100,
        ..Event::default()
    }
}

fn failed(proxy: usize) -> Event {
    Event {
        proxy,
        error: Some("unavailable: gone".into()),
        ..Event::default()
    }
}

#[test]
fn a_sync_counts_each_proxys_first_config_only() {
    let start = Instant::now();
    let ms = |n| start + Duration::from_millis(n);
    let mut big = got(0, ms(100), &[]);
    big.resources = 3000;
    big.bytes = 2_000_000;
    let events = [big, got(1, ms(300), &[]), got(0, ms(900), &["late"])];
    let result = judge_sync(&events, 2, start);
    assert_eq!(result.synced, 2);
    assert_eq!(result.all_after, Some(Duration::from_millis(300)));
    assert_eq!(result.spread.p50, Duration::from_millis(100));
    assert_eq!(result.first_resources, 3000);
    assert_eq!(result.first_bytes, 2_000_000);

    let result = judge_sync(&[got(0, ms(100), &[]), failed(1)], 2, start);
    assert_eq!(result.synced, 1);
    assert_eq!(result.all_after, None);
    assert_eq!(result.errors, ["proxy 1: unavailable: gone"]);
}

#[test]
fn a_round_times_the_update_carrying_the_change_from_the_rename() {
    let before = Instant::now();
    let changed = before + Duration::from_millis(5);
    let ms = |n| changed + Duration::from_millis(n);
    let target = key("outbound|8080||svc-3");
    let events = [
        // Before the rename: left over, not counted.
        got(0, before, &["outbound|8080||svc-3"]),
        got(0, ms(150), &["outbound|8080||svc-3"]),
        got(1, ms(180), &["outbound|8080||svc-3"]),
        got(
            2,
            ms(400),
            &["outbound|8080||svc-3", "outbound|8080||svc-4"],
        ),
        // A second update to a proxy already reached, and an unrelated one.
        got(2, ms(450), &["outbound|8080||svc-3"]),
        got(1, ms(460), &["outbound|8080||svc-9"]),
    ];
    let result = judge_round(&events, &target, changed);
    assert_eq!(result.spread.count, 3);
    assert_eq!(result.spread.p50, Duration::from_millis(180));
    assert_eq!(result.spread.max, Duration::from_millis(400));
    assert_eq!(result.resources, (1, 2));
    assert_eq!(result.other_responses, 2);
    assert!(result.errors.is_empty());
}

#[test]
fn a_round_nobody_received_is_empty_not_zero_latency_success() {
    let now = Instant::now();
    let result = judge_round(&[failed(0)], &key("x"), now);
    assert_eq!(result.spread.count, 0);
    assert_eq!(result.resources, (0, 0));
    assert_eq!(result.errors.len(), 1);
}
