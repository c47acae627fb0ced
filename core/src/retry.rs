//! Retry policies: how long a failed delivery waits before its next attempt, and when it
//! goes dead. Retry `n` (1-based) follows attempt `n`; a policy with `max_retries = 16`
//! allows 17 attempts, and a failure of the 17th puts the delivery in the dead-letter queue.

use crate::error::{Error, Result};
use crate::validate;
use std::time::Duration;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// RocketMQ's consumer retry schedule (its delay levels 3..18): 16 retries.
pub const ROCKETMQ: [Duration; 16] = [
    secs(10),
    secs(30),
    secs(60),
    secs(120),
    secs(180),
    secs(240),
    secs(300),
    secs(360),
    secs(420),
    secs(480),
    secs(540),
    secs(600),
    secs(1200),
    secs(1800),
    secs(3600),
    secs(7200),
];
/// Alipay's asynchronous-notification schedule: 4m 10m 10m 1h 2h 6h 15h.
pub const ALIPAY: [Duration; 7] = [
    secs(240),
    secs(600),
    secs(600),
    secs(3600),
    secs(7200),
    secs(21_600),
    secs(54_000),
];
/// WeChat Pay's notification schedule: 15s 15s 30s 3m 10m 20m 30m 30m 30m 60m 3h 3h 3h 6h 6h.
pub const WECHAT_PAY: [Duration; 15] = [
    secs(15),
    secs(15),
    secs(30),
    secs(180),
    secs(600),
    secs(1200),
    secs(1800),
    secs(1800),
    secs(1800),
    secs(3600),
    secs(10_800),
    secs(10_800),
    secs(10_800),
    secs(21_600),
    secs(21_600),
];
pub const MAX_RETRIES_LIMIT: u32 = 1000;

/// What `exponential` uses when a binding's caller leaves a parameter out: 1 s, doubling
/// up to 1 h, 16 retries (RocketMQ's count), +/-10% jitter.
pub const EXPONENTIAL_INITIAL: Duration = Duration::from_secs(1);
pub const EXPONENTIAL_MAX_DELAY: Duration = Duration::from_secs(3600);
pub const EXPONENTIAL_MAX_RETRIES: u32 = 16;
pub const EXPONENTIAL_JITTER: f64 = 0.1;

/// The default is RocketMQ's schedule.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RetryPolicy {
    #[default]
    RocketMq,
    Alipay,
    WechatPay,
    /// An explicit list of delays; its length is the number of retries.
    Fixed(Vec<Duration>),
    /// `initial * 2^(n-1)`, capped at `max_delay`, spread by `jitter` (0.1 = +/-10%).
    Exponential {
        initial: Duration,
        max_delay: Duration,
        max_retries: u32,
        jitter: f64,
    },
}

/// What follows a failed attempt (see [`RetryPolicy::after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Deliverable again at this time (ms since the epoch).
    RetryAt(i64),
    /// Retries used up: the delivery goes to the dead-letter queue.
    Dead,
}

impl RetryPolicy {
    pub fn rocketmq() -> Self {
        RetryPolicy::RocketMq
    }
    pub fn alipay() -> Self {
        RetryPolicy::Alipay
    }
    pub fn wechat_pay() -> Self {
        RetryPolicy::WechatPay
    }

    pub fn fixed(delays: Vec<Duration>) -> Result<Self> {
        if delays.len() > MAX_RETRIES_LIMIT as usize {
            return Err(Error::invalid(format!(
                "a fixed retry policy has at most {MAX_RETRIES_LIMIT} delays, got {}",
                delays.len()
            )));
        }
        for d in &delays {
            validate::bounded_duration("retry delay", *d)?;
        }
        Ok(RetryPolicy::Fixed(delays))
    }

    pub fn exponential(
        initial: Duration,
        max_delay: Duration,
        max_retries: u32,
        jitter: f64,
    ) -> Result<Self> {
        validate::positive_duration("initial retry delay", initial)?;
        validate::bounded_duration("max retry delay", max_delay)?;
        if max_delay < initial {
            return Err(Error::invalid(format!(
                "max_delay ({:?}) is shorter than initial ({:?})",
                max_delay, initial
            )));
        }
        if max_retries > MAX_RETRIES_LIMIT {
            return Err(Error::invalid(format!(
                "max_retries must be at most {MAX_RETRIES_LIMIT}, got {max_retries}"
            )));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(Error::invalid(format!(
                "jitter must be between 0 and 1, got {jitter}"
            )));
        }
        Ok(RetryPolicy::Exponential {
            initial,
            max_delay,
            max_retries,
            jitter,
        })
    }

    pub fn max_retries(&self) -> u32 {
        match self {
            RetryPolicy::RocketMq => ROCKETMQ.len() as u32,
            RetryPolicy::Alipay => ALIPAY.len() as u32,
            RetryPolicy::WechatPay => WECHAT_PAY.len() as u32,
            RetryPolicy::Fixed(d) => d.len() as u32,
            RetryPolicy::Exponential { max_retries, .. } => *max_retries,
        }
    }

    /// The wait before retry `n` (1-based), or `None` when the retries are used up.
    /// `unit` is a uniform random number in [0, 1) for the jitter.
    pub fn delay_before_retry(&self, n: u32, unit: f64) -> Option<Duration> {
        if n == 0 || n > self.max_retries() {
            return None;
        }
        let i = (n - 1) as usize;
        Some(match self {
            RetryPolicy::RocketMq => ROCKETMQ[i],
            RetryPolicy::Alipay => ALIPAY[i],
            RetryPolicy::WechatPay => WECHAT_PAY[i],
            RetryPolicy::Fixed(d) => d[i],
            RetryPolicy::Exponential {
                initial,
                max_delay,
                jitter,
                ..
            } => {
                let base = initial.as_secs_f64() * 2f64.powi(i.min(1000) as i32);
                let capped = base.min(max_delay.as_secs_f64());
                let spread = 1.0 + jitter * (2.0 * unit - 1.0);
                Duration::from_secs_f64((capped * spread).max(0.0))
            }
        })
    }

    /// What follows failed attempt `attempt` (1-based) at `now` (ms): a retry at a time, or
    /// death once the retries are used up. `explicit_delay_ms` (a nack's own delay)
    /// replaces the policy's wait but not its count; `unit` in [0, 1) drives the jitter.
    /// The one place that decides; the store only writes what this returns.
    pub fn after_failure(
        &self,
        attempt: u32,
        explicit_delay_ms: Option<i64>,
        now: i64,
        unit: f64,
    ) -> AfterFailure {
        match self.delay_before_retry(attempt, unit) {
            None => AfterFailure::Dead,
            Some(wait) => {
                let ms = explicit_delay_ms.unwrap_or_else(|| crate::clock::duration_to_ms(wait));
                AfterFailure::RetryAt(now.saturating_add(ms))
            }
        }
    }

    /// The stored form, one line of text in the consumer group's row.
    pub fn encode(&self) -> String {
        match self {
            RetryPolicy::RocketMq => "rocketmq".into(),
            RetryPolicy::Alipay => "alipay".into(),
            RetryPolicy::WechatPay => "wechat_pay".into(),
            RetryPolicy::Fixed(d) => {
                let ms: Vec<String> = d.iter().map(|d| d.as_millis().to_string()).collect();
                format!("fixed:{}", ms.join(","))
            }
            RetryPolicy::Exponential {
                initial,
                max_delay,
                max_retries,
                jitter,
            } => format!(
                "exponential:{},{},{},{}",
                initial.as_millis(),
                max_delay.as_millis(),
                max_retries,
                jitter
            ),
        }
    }

    pub fn decode(s: &str) -> Result<Self> {
        let bad = || Error::Storage(format!("unreadable retry policy {s:?} in the database"));
        let ms = |v: &str| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| bad())
        };
        match s.split_once(':') {
            None => match s {
                "rocketmq" => Ok(RetryPolicy::RocketMq),
                "alipay" => Ok(RetryPolicy::Alipay),
                "wechat_pay" => Ok(RetryPolicy::WechatPay),
                _ => Err(bad()),
            },
            Some(("fixed", "")) => Ok(RetryPolicy::Fixed(Vec::new())),
            Some(("fixed", list)) => Ok(RetryPolicy::Fixed(
                list.split(',').map(ms).collect::<Result<_>>()?,
            )),
            Some(("exponential", args)) => {
                let parts: Vec<&str> = args.split(',').collect();
                let [initial, max_delay, retries, jitter] = parts[..] else {
                    return Err(bad());
                };
                Ok(RetryPolicy::Exponential {
                    initial: ms(initial)?,
                    max_delay: ms(max_delay)?,
                    max_retries: retries.parse().map_err(|_| bad())?,
                    jitter: jitter.parse().map_err(|_| bad())?,
                })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_failure_retries_on_the_schedule_then_dies() {
        let p = RetryPolicy::fixed(vec![Duration::from_secs(1), Duration::from_secs(5)]).unwrap();
        assert_eq!(
            p.after_failure(1, None, 1_000, 0.5),
            AfterFailure::RetryAt(2_000)
        );
        assert_eq!(
            p.after_failure(2, None, 1_000, 0.5),
            AfterFailure::RetryAt(6_000)
        );
        assert_eq!(p.after_failure(3, None, 1_000, 0.5), AfterFailure::Dead);
        // A nack's own delay replaces the wait, not the count.
        assert_eq!(
            p.after_failure(1, Some(250), 1_000, 0.5),
            AfterFailure::RetryAt(1_250)
        );
        assert_eq!(
            p.after_failure(3, Some(250), 1_000, 0.5),
            AfterFailure::Dead
        );
        assert_eq!(
            p.after_failure(1, None, i64::MAX, 0.5),
            AfterFailure::RetryAt(i64::MAX)
        );
    }

    #[test]
    fn rocketmq_schedule_is_sixteen_retries_from_10s_to_2h() {
        let p = RetryPolicy::rocketmq();
        assert_eq!(p.max_retries(), 16);
        assert_eq!(p.delay_before_retry(1, 0.5), Some(secs(10)));
        assert_eq!(p.delay_before_retry(3, 0.5), Some(secs(60)));
        assert_eq!(p.delay_before_retry(16, 0.5), Some(secs(7200)));
        assert_eq!(p.delay_before_retry(17, 0.5), None);
        assert_eq!(p.delay_before_retry(0, 0.5), None);
    }

    #[test]
    fn payment_ladders_match_the_providers() {
        let total = |p: &RetryPolicy| -> u64 {
            (1..=p.max_retries())
                .map(|n| p.delay_before_retry(n, 0.0).unwrap().as_secs())
                .sum()
        };
        assert_eq!(RetryPolicy::alipay().max_retries(), 7);
        assert_eq!(
            total(&RetryPolicy::alipay()),
            240 + 600 + 600 + 3600 + 7200 + 21_600 + 54_000
        );
        assert_eq!(RetryPolicy::wechat_pay().max_retries(), 15);
        assert_eq!(
            RetryPolicy::wechat_pay().delay_before_retry(4, 0.0),
            Some(secs(180))
        );
    }

    #[test]
    fn exponential_doubles_caps_and_jitters_within_bounds() {
        let p = RetryPolicy::exponential(secs(1), secs(10), 8, 0.1).unwrap();
        assert_eq!(p.delay_before_retry(1, 0.5), Some(secs(1)));
        assert_eq!(p.delay_before_retry(3, 0.5), Some(secs(4)));
        assert_eq!(p.delay_before_retry(8, 0.5), Some(secs(10)));
        let low = p.delay_before_retry(2, 0.0).unwrap().as_secs_f64();
        let high = p.delay_before_retry(2, 0.999_999).unwrap().as_secs_f64();
        assert!((1.79..=1.81).contains(&low), "{low}");
        assert!((2.19..=2.21).contains(&high), "{high}");
        assert_eq!(p.delay_before_retry(9, 0.5), None);
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(RetryPolicy::exponential(Duration::ZERO, secs(1), 3, 0.1).is_err());
        assert!(RetryPolicy::exponential(secs(2), secs(1), 3, 0.1).is_err());
        assert!(RetryPolicy::exponential(secs(1), secs(2), 3, 1.5).is_err());
        assert!(RetryPolicy::exponential(secs(1), secs(2), 5000, 0.1).is_err());
        assert!(RetryPolicy::fixed(vec![secs(1); 1001]).is_err());
    }

    #[test]
    fn every_policy_round_trips_through_its_stored_form() {
        let policies = [
            RetryPolicy::rocketmq(),
            RetryPolicy::alipay(),
            RetryPolicy::wechat_pay(),
            RetryPolicy::fixed(vec![]).unwrap(),
            RetryPolicy::fixed(vec![Duration::from_millis(500), secs(5)]).unwrap(),
            RetryPolicy::exponential(secs(1), secs(3600), 16, 0.1).unwrap(),
        ];
        for p in policies {
            assert_eq!(RetryPolicy::decode(&p.encode()).unwrap(), p);
        }
        assert!(RetryPolicy::decode("fixed:x").is_err());
        assert!(RetryPolicy::decode("exponential:1,2").is_err());
    }
}
