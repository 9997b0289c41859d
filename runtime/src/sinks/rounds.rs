//! The retry driver every sink shares: requests are cut to the sink's
//! limits ([`cut`]), and each request is sent in rounds ([`Rounds::run`]):
//! what the peer acknowledged is published, what it refused for good is
//! parked with its detail, the rest is sent again after a backoff, until
//! `max_attempts` or the invocation deadline. A sink only builds requests
//! and says what an answer means per event ([`BatchResult`]).
//!
//! With [`Rounds::one_per_key`] (Kinesis, SNS FIFO) a request never holds
//! two events of one key, a later event of a key is sent only once the
//! earlier ones are acknowledged, and once one is parked every later event
//! of its key in the call is parked behind it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use super::{Backoff, Delivery, Outbound, PublishStats, RetryConfig};

/// What became of one event of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemStatus {
    /// The peer acknowledged it: the only state that counts as published.
    Submitted,
    /// Not attempted because another event failed: send it again (no wait).
    Resend,
    /// The peer refused it. `retriable` is false when trying again cannot
    /// help (validation, malformed): park it with the peer's detail.
    Failed {
        /// The peer's explanation.
        detail: String,
        /// Whether a later attempt may succeed.
        retriable: bool,
    },
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResult {
    /// Per event, in request order.
    Items(Vec<ItemStatus>),
    /// Nothing was published; all of it may be tried again.
    RetryAll(String),
    /// Nothing was published, and trying the same request again cannot
    /// help (bad request, unknown target, access denied): park all of it
    /// with the reason.
    Final(String),
    /// The peer refused the credentials (401). The sink reads its token
    /// anew before it answers this; refused twice in a row, it is final.
    Unauthorized(String),
}

/// Requests of one publish call in flight at once (a request's own rounds
/// stay sequential). With one per key, requests in flight together never
/// share a key.
pub const REQUESTS_IN_FLIGHT: usize = 8;

/// Parks, with the reason, each event `refusal` says the peer would refuse
/// (it is never sent); returns the others, in order.
pub fn park_refused(
    events: &[Outbound<'_>],
    deliveries: &mut [Option<Delivery>],
    refusal: impl Fn(&Outbound<'_>) -> Option<String>,
) -> Vec<usize> {
    let mut sendable = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        match refusal(event) {
            Some(reason) => {
                deliveries[i] = Some(Delivery::Park {
                    attempts: 0,
                    reason,
                })
            }
            None => sendable.push(i),
        }
    }
    sendable
}

/// How one sink retries: the policy, the per-request timeout, and the words
/// its park reasons use.
#[derive(Debug, Clone)]
pub struct Rounds {
    retry: RetryConfig,
    request_timeout: Duration,
    peer: String,
    token_setting: String,
    one_per_key: bool,
}

impl Rounds {
    /// Rounds under `retry`, each request bounded by `request_timeout` (and
    /// the time left). `peer` names the receiver in reasons ("the bus",
    /// "EventBridge").
    pub fn new(retry: RetryConfig, request_timeout: Duration, peer: impl Into<String>) -> Self {
        Rounds {
            retry,
            request_timeout,
            peer: peer.into(),
            token_setting: "the token file".into(),
            one_per_key: false,
        }
    }

    /// The setting to check when the token is refused twice
    /// (`bus.token_file`).
    pub fn token_setting(mut self, setting: impl Into<String>) -> Self {
        self.token_setting = setting.into();
        self
    }

    /// Keep order per key: one event of a key in flight at a time, and
    /// later events of a key parked behind a parked one.
    pub fn one_per_key(mut self, on: bool) -> Self {
        self.one_per_key = on;
        self
    }

    /// The configured per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryConfig {
        self.retry
    }

    /// Sends every request of `requests`, up to [`REQUESTS_IN_FLIGHT`] of
    /// consecutive ones at once (each to its end before the next group
    /// starts; with one per key, a group never holds a key twice, so a later
    /// event of a key goes only once the earlier one is settled), writing
    /// each event's outcome into `deliveries`.
    /// `send(items, timeout, round)` makes one request of `items` (indices
    /// into the caller's events) within `timeout`; `round` counts from 0 per
    /// request. `key(i)` is event `i`'s key, used with
    /// [`Rounds::one_per_key`]. Requests must come from [`cut`] so that, per
    /// key, events appear in order. Events already parked in `deliveries`
    /// (refused before sending) hold back the later events of their key.
    pub async fn run<'k, S, F>(
        &self,
        requests: Vec<Vec<usize>>,
        key: impl Fn(usize) -> Option<&'k str>,
        until: Instant,
        stats: &mut PublishStats,
        deliveries: &mut [Option<Delivery>],
        send: S,
    ) where
        S: Fn(Vec<usize>, Duration, u32) -> F,
        F: Future<Output = BatchResult>,
    {
        // Per key, its first parked event and why it was parked; events the
        // sink parked before sending (over a limit) count too.
        let mut parked_keys: HashMap<&'k str, (usize, String)> = HashMap::new();
        if self.one_per_key {
            for (i, delivery) in deliveries.iter().enumerate() {
                if let (Some(k), Some(Delivery::Park { reason, .. })) = (key(i), delivery) {
                    parked_keys.entry(k).or_insert_with(|| (i, reason.clone()));
                }
            }
        }
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            // The next requests that may be in flight together: at most
            // REQUESTS_IN_FLIGHT, and with one per key, no key in two of them.
            let mut group: Vec<Vec<usize>> = Vec::new();
            let mut keys: HashSet<&'k str> = HashSet::new();
            while let Some(next) = requests.peek() {
                if group.len() == REQUESTS_IN_FLIGHT
                    || (self.one_per_key
                        && next
                            .iter()
                            .any(|&i| key(i).is_some_and(|k| keys.contains(k))))
                {
                    break;
                }
                let request = requests.next().expect("peeked");
                let request: Vec<usize> = if self.one_per_key {
                    keys.extend(request.iter().filter_map(|&i| key(i)));
                    request
                        .into_iter()
                        .filter(|&i| match key(i).and_then(|k| parked_keys.get(k)) {
                            Some((first, reason)) if *first < i => {
                                deliveries[i] = Some(Delivery::Park {
                                    attempts: 0,
                                    reason: behind(reason),
                                });
                                false
                            }
                            _ => true,
                        })
                        .collect()
                } else {
                    request
                };
                if !request.is_empty() {
                    group.push(request);
                }
            }
            let count = deliveries.len();
            let answers = futures_util::future::join_all(group.iter().map(|request| {
                let send = &send;
                async move {
                    let mut outcomes: Vec<Option<Delivery>> = vec![None; count];
                    let mut sent = PublishStats::default();
                    self.request(request, until, &mut sent, &mut outcomes, send)
                        .await;
                    (outcomes, sent)
                }
            }))
            .await;
            for (request, (outcomes, sent)) in group.iter().zip(answers) {
                stats.attempts += sent.attempts;
                stats.latencies.extend(sent.latencies);
                for &i in request {
                    deliveries[i] = outcomes[i].clone();
                }
                if self.one_per_key {
                    for &i in request {
                        if let (Some(k), Some(Delivery::Park { reason, .. })) =
                            (key(i), &deliveries[i])
                        {
                            let first = parked_keys.entry(k).or_insert_with(|| (i, reason.clone()));
                            if i < first.0 {
                                *first = (i, reason.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    /// One request in rounds until each of its events is published or
    /// parked.
    async fn request<S, F>(
        &self,
        request: &[usize],
        until: Instant,
        stats: &mut PublishStats,
        deliveries: &mut [Option<Delivery>],
        send: &S,
    ) where
        S: Fn(Vec<usize>, Duration, u32) -> F,
        F: Future<Output = BatchResult>,
    {
        let peer = &self.peer;
        let mut backoff = Backoff::new(self.retry);
        let mut pending: Vec<usize> = request.to_vec();
        let mut attempts: HashMap<usize, u32> = pending.iter().map(|&i| (i, 0)).collect();
        let mut last_error = String::new();
        let mut failed_rounds = 0;
        let mut rounds = 0;
        let mut refused_token = false;
        let park = |deliveries: &mut [Option<Delivery>], i: usize, attempts: u32, reason| {
            deliveries[i] = Some(Delivery::Park { attempts, reason });
        };
        while !pending.is_empty() {
            let now = Instant::now();
            let Some(left) = until.checked_duration_since(now).filter(|d| !d.is_zero()) else {
                let reason = if last_error.is_empty() {
                    "the invocation deadline was too near to publish".to_owned()
                } else {
                    format!("the invocation deadline was near; last error: {last_error}")
                };
                for &i in &pending {
                    park(deliveries, i, attempts[&i], reason.clone());
                }
                return;
            };
            let timeout = self.request_timeout.min(left);
            let started = Instant::now();
            let result = send(pending.clone(), timeout, rounds).await;
            stats.attempts += 1;
            stats.latencies.push(started.elapsed());
            rounds += 1;
            for i in &pending {
                *attempts.get_mut(i).expect("pending event") += 1;
            }
            let mut still = Vec::new();
            let mut any_failure = false;
            let unauthorized = matches!(result, BatchResult::Unauthorized(_));
            match result {
                BatchResult::Items(statuses) if statuses.len() != pending.len() => {
                    // A sink's bug, not the peer's: never count it as published.
                    any_failure = true;
                    last_error = format!(
                        "{} results for a request of {} events",
                        statuses.len(),
                        pending.len()
                    );
                    still = pending.clone();
                }
                BatchResult::Items(statuses) => {
                    for (&i, status) in pending.iter().zip(statuses) {
                        match status {
                            ItemStatus::Submitted => deliveries[i] = Some(Delivery::Published),
                            ItemStatus::Resend => still.push(i),
                            ItemStatus::Failed {
                                detail,
                                retriable: false,
                            } => park(
                                deliveries,
                                i,
                                attempts[&i],
                                format!("rejected by {peer}: {detail}"),
                            ),
                            ItemStatus::Failed {
                                detail,
                                retriable: true,
                            } => {
                                any_failure = true;
                                last_error = detail;
                                still.push(i);
                            }
                        }
                    }
                }
                BatchResult::Final(reason) => {
                    tracing::warn!(
                        events = pending.len(),
                        "{peer} refused the request: {reason}"
                    );
                    for &i in &pending {
                        park(
                            deliveries,
                            i,
                            attempts[&i],
                            format!("refused by {peer}, not retried: {reason}"),
                        );
                    }
                    return;
                }
                BatchResult::Unauthorized(reason) if refused_token => {
                    tracing::error!(
                        "{peer} refused the token again, after the token file was read anew: {reason}"
                    );
                    let setting = &self.token_setting;
                    for &i in &pending {
                        park(
                            deliveries,
                            i,
                            attempts[&i],
                            format!("{peer} refused the token twice ({reason}); check {setting}"),
                        );
                    }
                    return;
                }
                BatchResult::RetryAll(reason) | BatchResult::Unauthorized(reason) => {
                    refused_token = unauthorized;
                    tracing::warn!(
                        events = pending.len(),
                        attempt = failed_rounds + 1,
                        "publishing to {peer} failed: {reason}"
                    );
                    any_failure = true;
                    last_error = reason;
                    still = pending.clone();
                }
            }
            pending = still;
            if pending.is_empty() {
                return;
            }
            if any_failure {
                failed_rounds += 1;
            }
            // Resending aborted events needs no wait, but is bounded too.
            let exhausted = !backoff.may_retry(failed_rounds)
                || rounds >= self.retry.max_attempts.saturating_mul(2);
            if exhausted {
                for &i in &pending {
                    let n = attempts[&i];
                    park(
                        deliveries,
                        i,
                        n,
                        format!("gave up after {n} attempts: {last_error}"),
                    );
                }
                return;
            }
            if any_failure {
                let delay = backoff.delay(failed_rounds);
                if Instant::now() + delay < until {
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

fn behind(reason: &str) -> String {
    format!("an earlier event with the same key was parked, this one is parked behind it to keep the key's order ({reason})")
}

/// The limits of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events in one request.
    pub max_events: usize,
    /// Most bytes in one request, as counted by the sink's size function.
    pub max_bytes: usize,
}

/// Cuts `items` (indices, in order) into requests within `limits`, `size(i)`
/// being what event `i` adds to a request. A request is never empty: an
/// event larger than `max_bytes` on its own goes alone (sinks park such
/// events before). With `key` (one per key), a request holds at most one
/// event of a key and, per key, events come in later requests in order:
/// the first event of every key is in the first wave of requests, the
/// second in the next wave, and so on.
pub fn cut<'k>(
    items: &[usize],
    limits: Limits,
    size: impl Fn(usize) -> usize,
    key: Option<&dyn Fn(usize) -> Option<&'k str>>,
) -> Vec<Vec<usize>> {
    let waves: Vec<Vec<usize>> = match key {
        None => vec![items.to_vec()],
        Some(key) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            let mut waves: Vec<Vec<usize>> = Vec::new();
            for &i in items {
                let wave = match key(i) {
                    Some(k) => {
                        let n = seen.entry(k).or_insert(0);
                        *n += 1;
                        *n - 1
                    }
                    None => 0,
                };
                if waves.len() <= wave {
                    waves.resize_with(wave + 1, Vec::new);
                }
                waves[wave].push(i);
            }
            waves
        }
    };
    let mut requests = Vec::new();
    for wave in waves {
        let mut request = Vec::new();
        let mut bytes = 0;
        for i in wave {
            let size = size(i);
            if !request.is_empty()
                && (request.len() >= limits.max_events || bytes + size > limits.max_bytes)
            {
                requests.push(std::mem::take(&mut request));
                bytes = 0;
            }
            request.push(i);
            bytes += size;
        }
        if !request.is_empty() {
            requests.push(request);
        }
    }
    requests
}

/// Fills the events no request reached (none should be left) as parked.
pub fn settle(deliveries: Vec<Option<Delivery>>) -> Vec<Delivery> {
    deliveries
        .into_iter()
        .map(|d| {
            d.unwrap_or(Delivery::Park {
                attempts: 0,
                reason: "not attempted".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn retry(max_attempts: u32) -> RetryConfig {
        RetryConfig {
            max_attempts,
            initial_backoff_ms: 1,
            max_backoff_ms: 2,
            deadline_margin_ms: 0,
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    const LIMITS: Limits = Limits {
        max_events: 3,
        max_bytes: 10,
    };

    #[test]
    fn cut_keeps_order_within_event_and_byte_limits() {
        let items: Vec<usize> = (0..7).collect();
        assert_eq!(
            cut(&items, LIMITS, |_| 1, None),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
        );
        let sizes = [4, 4, 4, 11, 1, 9];
        assert_eq!(
            cut(&[0, 1, 2, 3, 4, 5], LIMITS, |i| sizes[i], None),
            vec![vec![0, 1], vec![2], vec![3], vec![4, 5]]
        );
    }

    #[test]
    fn cut_one_per_key_never_puts_a_key_twice_in_a_request() {
        let keys = ["a", "b", "a", "c", "a", "b"];
        let key = |i: usize| Some(keys[i]);
        let requests = cut(&[0, 1, 2, 3, 4, 5], LIMITS, |_| 1, Some(&key));
        assert_eq!(requests, vec![vec![0, 1, 3], vec![2, 5], vec![4]]);
        for request in &requests {
            let mut seen: Vec<&str> = request.iter().map(|&i| keys[i]).collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), request.len());
        }
    }

    /// A scripted peer: answers per round, records what each request held.
    struct Script {
        answers: Mutex<Vec<BatchResult>>,
        sent: Mutex<Vec<Vec<usize>>>,
    }

    impl Script {
        fn new(answers: Vec<BatchResult>) -> Self {
            Script {
                answers: Mutex::new(answers.into_iter().rev().collect()),
                sent: Mutex::new(Vec::new()),
            }
        }

        async fn send(&self, items: Vec<usize>) -> BatchResult {
            self.sent.lock().unwrap().push(items.clone());
            self.answers
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(BatchResult::Items(vec![ItemStatus::Submitted; items.len()]))
        }
    }

    async fn drive(
        rounds: &Rounds,
        requests: Vec<Vec<usize>>,
        keys: &[&str],
        script: &Script,
    ) -> (Vec<Delivery>, PublishStats) {
        let mut stats = PublishStats::default();
        let mut deliveries = vec![None; keys.len()];
        rounds
            .run(
                requests,
                |i| Some(keys[i]),
                far(),
                &mut stats,
                &mut deliveries,
                |items, _, _| script.send(items),
            )
            .await;
        (settle(deliveries), stats)
    }

    /// Runs `requests` against a peer that takes 20 ms per request; returns
    /// the most requests it had in flight at once. Fails if two requests in
    /// flight together hold one key.
    async fn in_flight(rounds: &Rounds, requests: Vec<Vec<usize>>, keys: &[&str]) -> usize {
        let active: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        let most = std::sync::atomic::AtomicUsize::new(0);
        let mut stats = PublishStats::default();
        let mut deliveries = vec![None; keys.len()];
        rounds
            .run(
                requests,
                |i| Some(keys[i]),
                far(),
                &mut stats,
                &mut deliveries,
                |items, _, _| {
                    let (active, most) = (&active, &most);
                    async move {
                        {
                            let mut now = active.lock().unwrap();
                            for &i in &items {
                                assert!(
                                    !now.iter().any(|&j| keys[j] == keys[i]),
                                    "key {} in two requests at once",
                                    keys[i]
                                );
                            }
                            now.extend(&items);
                            let requests = now.len() / items.len().max(1);
                            most.fetch_max(requests, std::sync::atomic::Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        active.lock().unwrap().retain(|j| !items.contains(j));
                        BatchResult::Items(vec![ItemStatus::Submitted; items.len()])
                    }
                },
            )
            .await;
        assert!(settle(deliveries).iter().all(|d| *d == Delivery::Published));
        most.into_inner()
    }

    #[tokio::test]
    async fn requests_go_out_together_up_to_the_limit() {
        let keys: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let requests: Vec<Vec<usize>> = (0..20).map(|i| vec![i]).collect();
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer");
        assert_eq!(
            in_flight(&rounds, requests, &keys).await,
            REQUESTS_IN_FLIGHT
        );
    }

    #[tokio::test]
    async fn with_one_per_key_requests_in_flight_together_share_no_key() {
        let keys = ["a", "b", "c", "d", "a", "e", "a", "b"];
        let key = |i: usize| Some(keys[i]);
        let items: Vec<usize> = (0..keys.len()).collect();
        let limits = Limits {
            max_events: 1,
            max_bytes: 100,
        };
        let requests = cut(&items, limits, |_| 1, Some(&key));
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer").one_per_key(true);
        // Each key's first event together (a, b, c, d, e); then a and b;
        // then a.
        assert_eq!(in_flight(&rounds, requests, &keys).await, 5);
    }

    fn failed(retriable: bool) -> ItemStatus {
        ItemStatus::Failed {
            detail: "nope".into(),
            retriable,
        }
    }

    #[tokio::test]
    async fn retriable_items_are_resent_and_final_ones_parked() {
        let script = Script::new(vec![BatchResult::Items(vec![
            ItemStatus::Submitted,
            failed(true),
            failed(false),
            ItemStatus::Resend,
        ])]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer");
        let (deliveries, stats) = drive(&rounds, vec![vec![0, 1, 2, 3]], &["a"; 4], &script).await;
        assert_eq!(deliveries[0], Delivery::Published);
        assert_eq!(deliveries[1], Delivery::Published);
        assert_eq!(
            deliveries[2],
            Delivery::Park {
                attempts: 1,
                reason: "rejected by the peer: nope".into()
            }
        );
        assert_eq!(deliveries[3], Delivery::Published);
        assert_eq!(
            *script.sent.lock().unwrap(),
            vec![vec![0, 1, 2, 3], vec![1, 3]]
        );
        assert_eq!(stats.attempts, 2);
        assert_eq!(stats.latencies.len(), 2);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let script = Script::new(vec![BatchResult::RetryAll("503".into()); 10]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer");
        let (deliveries, _) = drive(&rounds, vec![vec![0]], &["a"], &script).await;
        assert_eq!(
            deliveries[0],
            Delivery::Park {
                attempts: 3,
                reason: "gave up after 3 attempts: 503".into()
            }
        );
    }

    #[tokio::test]
    async fn final_and_twice_unauthorized_park_everything() {
        let script = Script::new(vec![BatchResult::Final("400".into())]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer");
        let (deliveries, _) = drive(&rounds, vec![vec![0, 1]], &["a", "b"], &script).await;
        assert!(deliveries.iter().all(|d| matches!(d,
            Delivery::Park { reason, attempts: 1 } if reason == "refused by the peer, not retried: 400")));

        let script = Script::new(vec![BatchResult::Unauthorized("401".into()); 2]);
        let rounds = rounds.token_setting("sinks.x.token_file");
        let (deliveries, _) = drive(&rounds, vec![vec![0]], &["a"], &script).await;
        assert_eq!(
            deliveries[0],
            Delivery::Park {
                attempts: 2,
                reason: "the peer refused the token twice (401); check sinks.x.token_file".into()
            }
        );
    }

    #[tokio::test]
    async fn a_passed_deadline_parks_without_sending() {
        let script = Script::new(vec![]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer");
        let mut deliveries = vec![None];
        rounds
            .run(
                vec![vec![0]],
                |_| None,
                Instant::now(),
                &mut PublishStats::default(),
                &mut deliveries,
                |items, _, _| script.send(items),
            )
            .await;
        assert!(script.sent.lock().unwrap().is_empty());
        assert_eq!(
            deliveries[0],
            Some(Delivery::Park {
                attempts: 0,
                reason: "the invocation deadline was too near to publish".into()
            })
        );
    }

    #[tokio::test]
    async fn one_per_key_waits_for_acknowledgement_and_parks_behind() {
        // Events 0 and 2 share key "a"; 0 is refused for good.
        let keys = ["a", "b", "a", "c", "a"];
        let key = |i: usize| Some(keys[i]);
        let requests = cut(&[0, 1, 2, 3, 4], LIMITS, |_| 1, Some(&key));
        assert_eq!(requests, vec![vec![0, 1, 3], vec![2], vec![4]]);
        let script = Script::new(vec![BatchResult::Items(vec![
            failed(false),
            failed(true),
            ItemStatus::Submitted,
        ])]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer").one_per_key(true);
        let (deliveries, _) = drive(&rounds, requests, &keys, &script).await;
        // Event 2 was never sent while 0 was unsettled, and never after it
        // was parked.
        assert_eq!(*script.sent.lock().unwrap(), vec![vec![0, 1, 3], vec![1]]);
        assert_eq!(deliveries[1], Delivery::Published);
        assert_eq!(deliveries[3], Delivery::Published);
        for later in [2, 4] {
            match &deliveries[later] {
                Delivery::Park {
                    attempts: 0,
                    reason,
                } => {
                    assert!(reason.contains("parked behind"), "{reason}");
                    assert!(reason.contains("rejected by the peer: nope"), "{reason}");
                }
                other => panic!("{later}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn one_per_key_parks_behind_an_event_parked_before_sending() {
        // Event 1 (key "a") was parked by the sink (over a limit): event 0
        // of "a" is earlier and still sent, event 2 of "a" is parked behind.
        let keys = ["a", "a", "a"];
        let script = Script::new(vec![]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer").one_per_key(true);
        let mut deliveries = vec![
            None,
            Some(Delivery::Park {
                attempts: 0,
                reason: "too big".into(),
            }),
            None,
        ];
        rounds
            .run(
                vec![vec![0], vec![2]],
                |i| Some(keys[i]),
                far(),
                &mut PublishStats::default(),
                &mut deliveries,
                |items, _, _| script.send(items),
            )
            .await;
        assert_eq!(*script.sent.lock().unwrap(), vec![vec![0]]);
        assert_eq!(deliveries[0], Some(Delivery::Published));
        assert!(
            matches!(&deliveries[2], Some(Delivery::Park { reason, .. }) if reason.contains("too big"))
        );
    }

    #[tokio::test]
    async fn without_one_per_key_later_events_are_still_sent() {
        let keys = ["a", "a"];
        let script = Script::new(vec![BatchResult::Items(vec![failed(false)])]);
        let rounds = Rounds::new(retry(3), Duration::from_secs(1), "the peer");
        let (deliveries, _) = drive(&rounds, vec![vec![0], vec![1]], &keys, &script).await;
        assert!(matches!(deliveries[0], Delivery::Park { .. }));
        assert_eq!(deliveries[1], Delivery::Published);
    }
}
