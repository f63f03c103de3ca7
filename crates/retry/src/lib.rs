//! The workspace's one retry loop.
//!
//! A [`Backoff`] is the policy: how many attempts in all, the first wait, the factor it grows
//! by, the longest wait, and optionally full jitter. [`retry`] (blocking) and [`retry_async`]
//! (tokio) run an operation under it; the caller's classifier says after each attempt whether
//! to [`Verdict::Stop`] (success, or a failure no retry fixes), [`Verdict::Retry`] or
//! [`Verdict::RetryAfter`] (the server asked for a wait, e.g. HTTP `Retry-After`).
//!
//! The loops take their sleeper as a parameter in the `_with` forms, so tests check the waits
//! without waiting. Nothing here does I/O, logs or reads a clock.

use std::time::Duration;

/// A bounded exponential backoff: attempt 1, wait `initial`, attempt 2, wait `initial * factor`,
/// ..., each wait at most `max_delay`, `attempts` tries in all (the first included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included; 0 counts as 1.
    pub attempts: u32,
    /// The wait after the first failed attempt.
    pub initial: Duration,
    /// What each further wait is multiplied by.
    pub factor: u32,
    /// The longest wait, also the cap on a server's `Retry-After`.
    pub max_delay: Duration,
    pub jitter: Jitter,
}

/// Randomness in the waits, so that many clients failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// The waits are exactly the policy's.
    #[default]
    None,
    /// "Full jitter": each wait is uniform in `[0, delay]`, from a per-loop random seed.
    Full,
    /// Full jitter from a fixed seed: the same waits every time (for tests).
    Seeded(u64),
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Return this attempt's result: it succeeded, or failed in a way no retry fixes.
    Stop,
    /// Try again after the policy's wait.
    Retry,
    /// Try again after at least this long (capped at the policy's `max_delay`): the server
    /// said when (`Retry-After`).
    RetryAfter(Duration),
}

impl Backoff {
    /// `attempts` tries in all, waits doubling from `initial` without a cap, no jitter.
    pub const fn exponential(attempts: u32, initial: Duration) -> Backoff {
        Backoff {
            attempts,
            initial,
            factor: 2,
            max_delay: Duration::MAX,
            jitter: Jitter::None,
        }
    }

    /// The same policy with waits growing by `factor` (1 keeps them constant).
    pub const fn with_factor(self, factor: u32) -> Backoff {
        Backoff { factor, ..self }
    }

    /// The same policy with no wait longer than `max_delay`.
    pub const fn with_max_delay(self, max_delay: Duration) -> Backoff {
        Backoff { max_delay, ..self }
    }

    /// The same policy with `jitter`.
    pub const fn with_jitter(self, jitter: Jitter) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// Tries in all (at least 1).
    pub fn max_attempts(&self) -> u32 {
        self.attempts.max(1)
    }

    /// The wait, before jitter, after failed attempt `failed` (1-based):
    /// `initial * factor^(failed - 1)`, at most `max_delay`. Saturates instead of overflowing.
    pub fn delay(&self, failed: u32) -> Duration {
        let mut d = self.initial;
        match self.factor {
            _ if failed <= 1 => return d.min(self.max_delay),
            0 => return Duration::ZERO,
            1 => return d.min(self.max_delay),
            _ => {}
        }
        for _ in 1..failed.max(1) {
            if d >= self.max_delay {
                break;
            }
            d = d.saturating_mul(self.factor);
        }
        d.min(self.max_delay)
    }

    /// The waits a loop under this policy makes when every attempt but the last fails
    /// (`attempts - 1` of them), jitter applied.
    pub fn schedule(&self) -> Schedule {
        let seed = match self.jitter {
            Jitter::None => 0,
            Jitter::Seeded(s) => s,
            Jitter::Full => random_seed(),
        };
        Schedule {
            policy: *self,
            failed: 0,
            rng: seed,
        }
    }
}

/// The waits of one loop, in order (see [`Backoff::schedule`]).
#[derive(Debug, Clone)]
pub struct Schedule {
    policy: Backoff,
    failed: u32,
    rng: u64,
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.failed + 1 >= self.policy.max_attempts() {
            return None;
        }
        self.failed += 1;
        let d = self.policy.delay(self.failed);
        Some(match self.policy.jitter {
            Jitter::None => d,
            Jitter::Full | Jitter::Seeded(_) => {
                // Uniform in [0, d] at nanosecond resolution.
                let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                let r = splitmix64(&mut self.rng);
                Duration::from_nanos(match nanos.checked_add(1) {
                    Some(n) => r % n,
                    None => r,
                })
            }
        })
    }
}

/// The wait before the next attempt, given the verdict on the last one and the policy's wait.
fn wait(policy: &Backoff, verdict: Verdict, scheduled: Duration) -> Duration {
    match verdict {
        Verdict::RetryAfter(asked) => scheduled.max(asked.min(policy.max_delay)),
        Verdict::Retry | Verdict::Stop => scheduled,
    }
}

/// Runs `op` (given the attempt number, 1-based) until `classify` says [`Verdict::Stop`] or the
/// policy's attempts are spent, and returns the last attempt's result. `classify` is asked only
/// when another attempt remains, so a `Retry` answer is always acted on (it may log or count).
/// Blocks the thread between attempts.
pub fn retry<T, E>(
    policy: &Backoff,
    op: impl FnMut(u32) -> Result<T, E>,
    classify: impl FnMut(&Result<T, E>, u32) -> Verdict,
) -> Result<T, E> {
    retry_with(policy, std::thread::sleep, op, classify)
}

/// [`retry`] with the sleeper given.
pub fn retry_with<T, E>(
    policy: &Backoff,
    mut sleep: impl FnMut(Duration),
    mut op: impl FnMut(u32) -> Result<T, E>,
    mut classify: impl FnMut(&Result<T, E>, u32) -> Verdict,
) -> Result<T, E> {
    let mut schedule = policy.schedule();
    let mut attempt = 1;
    loop {
        let result = op(attempt);
        let Some(scheduled) = schedule.next() else {
            return result;
        };
        match classify(&result, attempt) {
            Verdict::Stop => return result,
            verdict => sleep(wait(policy, verdict, scheduled)),
        }
        attempt += 1;
    }
}

/// [`retry`] for async operations, waiting with tokio's timer.
#[cfg(feature = "tokio")]
pub async fn retry_async<T, E, Fut>(
    policy: &Backoff,
    op: impl FnMut(u32) -> Fut,
    classify: impl FnMut(&Result<T, E>, u32) -> Verdict,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    retry_async_with(policy, tokio::time::sleep, op, classify).await
}

/// [`retry_async`] with the sleeper given.
pub async fn retry_async_with<T, E, Fut, Sleep>(
    policy: &Backoff,
    mut sleep: impl FnMut(Duration) -> Sleep,
    mut op: impl FnMut(u32) -> Fut,
    mut classify: impl FnMut(&Result<T, E>, u32) -> Verdict,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    Sleep: Future<Output = ()>,
{
    let mut schedule = policy.schedule();
    let mut attempt = 1;
    loop {
        let result = op(attempt).await;
        let Some(scheduled) = schedule.next() else {
            return result;
        };
        match classify(&result, attempt) {
            Verdict::Stop => return result,
            verdict => sleep(wait(policy, verdict, scheduled)).await,
        }
        attempt += 1;
    }
}

/// The delay an HTTP `Retry-After` value asks for, when it is in seconds (`Retry-After: 3`).
/// An HTTP date is not read (that would need a clock): `None`, and the policy's wait applies.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A seed that differs per loop and per process: std's randomly keyed SipHash of a counter.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// SplitMix64: a small, well-mixed generator; enough for spreading waits, not for secrets.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&n| Duration::from_millis(n)).collect()
    }

    #[test]
    fn exponential_waits_double_up_to_the_cap() {
        let p = Backoff::exponential(6, 200 * MS).with_max_delay(Duration::from_secs(1));
        assert_eq!(
            p.schedule().collect::<Vec<_>>(),
            ms(&[200, 400, 800, 1000, 1000])
        );
    }

    #[test]
    fn one_attempt_means_no_wait_and_zero_counts_as_one() {
        assert_eq!(Backoff::exponential(1, MS).schedule().count(), 0);
        assert_eq!(Backoff::exponential(0, MS).schedule().count(), 0);
        assert_eq!(Backoff::exponential(0, MS).max_attempts(), 1);
    }

    #[test]
    fn factor_one_keeps_waits_constant_and_large_factors_saturate() {
        let p = Backoff::exponential(4, 50 * MS).with_factor(1);
        assert_eq!(p.schedule().collect::<Vec<_>>(), ms(&[50, 50, 50]));
        let huge = Backoff::exponential(u32::MAX, Duration::from_secs(1)).with_factor(u32::MAX);
        assert_eq!(huge.delay(1_000_000), Duration::MAX);
        let capped = huge.with_max_delay(Duration::from_secs(9));
        assert_eq!(capped.delay(1_000_000), Duration::from_secs(9));
    }

    #[test]
    fn seeded_full_jitter_is_repeatable_and_within_each_wait() {
        let p = Backoff::exponential(8, 100 * MS).with_jitter(Jitter::Seeded(7));
        let a: Vec<_> = p.schedule().collect();
        let b: Vec<_> = p.schedule().collect();
        assert_eq!(a, b);
        let plain = Backoff::exponential(8, 100 * MS);
        for (n, (j, d)) in a.iter().zip(plain.schedule()).enumerate() {
            assert!(j <= &d, "wait {n}: {j:?} > {d:?}");
        }
        // Not all equal to the unjittered waits: the jitter does something.
        assert_ne!(a, plain.schedule().collect::<Vec<_>>());
        let other: Vec<_> = p.with_jitter(Jitter::Seeded(8)).schedule().collect();
        assert_ne!(a, other);
    }

    #[test]
    fn full_jitter_stays_within_the_waits() {
        let p = Backoff::exponential(6, 10 * MS).with_jitter(Jitter::Full);
        for (j, d) in p
            .schedule()
            .zip(Backoff::exponential(6, 10 * MS).schedule())
        {
            assert!(j <= d);
        }
    }

    #[test]
    fn retries_until_success_with_the_scheduled_waits() {
        let mut slept = Vec::new();
        let mut seen = Vec::new();
        let r: Result<u32, &str> = retry_with(
            &Backoff::exponential(5, 10 * MS),
            |d| slept.push(d),
            |n| {
                seen.push(n);
                if n < 3 { Err("down") } else { Ok(n) }
            },
            |r, _| {
                if r.is_err() {
                    Verdict::Retry
                } else {
                    Verdict::Stop
                }
            },
        );
        assert_eq!(r, Ok(3));
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(slept, ms(&[10, 20]));
    }

    #[test]
    fn gives_up_after_the_attempts_with_the_last_result_and_never_asks_on_the_last() {
        let mut slept = Vec::new();
        let mut asked = Vec::new();
        let r: Result<(), u32> = retry_with(
            &Backoff::exponential(3, 10 * MS),
            |d| slept.push(d),
            Err,
            |_, n| {
                asked.push(n);
                Verdict::Retry
            },
        );
        assert_eq!(r, Err(3));
        assert_eq!(asked, [1, 2]);
        assert_eq!(slept, ms(&[10, 20]));
    }

    #[test]
    fn a_stop_verdict_returns_at_once() {
        let mut slept = Vec::new();
        let r: Result<(), u32> = retry_with(
            &Backoff::exponential(5, 10 * MS),
            |d| slept.push(d),
            Err,
            |_, _| Verdict::Stop,
        );
        assert_eq!(r, Err(1));
        assert!(slept.is_empty());
    }

    #[test]
    fn retry_after_lengthens_a_wait_up_to_the_cap_but_never_shortens_it() {
        let p = Backoff::exponential(4, 100 * MS).with_max_delay(Duration::from_secs(2));
        let mut slept = Vec::new();
        let asks = [
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::ZERO,
        ];
        let _: Result<(), u32> = retry_with(
            &p,
            |d| slept.push(d),
            Err,
            |_, n| Verdict::RetryAfter(asks[n as usize - 1]),
        );
        assert_eq!(slept, ms(&[1000, 2000, 400]));
    }

    #[tokio::test]
    async fn the_async_loop_follows_the_same_schedule() {
        let slept = std::cell::RefCell::new(Vec::new());
        let r: Result<u32, u32> = retry_async_with(
            &Backoff::exponential(4, 5 * MS).with_max_delay(12 * MS),
            |d| {
                slept.borrow_mut().push(d);
                std::future::ready(())
            },
            |n| async move { if n == 4 { Ok(n) } else { Err(n) } },
            |r, _| {
                if r.is_err() {
                    Verdict::Retry
                } else {
                    Verdict::Stop
                }
            },
        )
        .await;
        assert_eq!(r, Ok(4));
        assert_eq!(slept.into_inner(), ms(&[5, 10, 12]));
    }

    #[test]
    fn retry_after_in_seconds_is_read_and_dates_are_left_to_the_policy() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
